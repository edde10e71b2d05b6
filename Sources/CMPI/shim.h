// Open MPI for Swift. In Open MPI the predefined handles (MPI_COMM_WORLD, MPI_DOUBLE, MPI_SUM,
// ...) are macros that take the address of library globals, which Swift cannot import as
// constants; these inline accessors return them.
#include <mpi.h>

static inline MPI_Comm ensemble_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ensemble_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ensemble_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype ensemble_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op ensemble_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op ensemble_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op ensemble_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Status *ensemble_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int ensemble_mpi_success(void) { return MPI_SUCCESS; }
static inline int ensemble_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
