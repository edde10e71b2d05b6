/*
 * openmm_plugin.cpp — the `openmm` energy plugin of `ensemble`.
 *
 * Evaluates any OpenMM System serialized to XML (XmlSerializer.serialize(system)) through
 * OpenMM's own library, with start coordinates and topology from a PDB file and/or a State XML.
 *
 *   u(x) = U(x) / kT,   ∇u = −F / kT · (0.1 nm/Å)
 *
 * Lengths cross the ABI in Å (length_unit_angstrom = 1); OpenMM works in nm and kJ/mol.
 * kT = R·T with R = 8.31446261815324e-3 kJ/(mol·K), the constant of the `alanine` plugin.
 *
 * Only OpenMM's C API (OpenMMCWrapper.h) is called, so no OpenMM C++ type or std::string
 * crosses between this file and libOpenMM.so. The file is C++ for one reason: the C wrapper
 * lets OpenMM's exceptions (a bad XML, a missing platform) propagate, and only a C++ frame can
 * catch them and turn them into the ABI's error messages.
 *
 * Reentrancy: each thread that calls `evaluate` takes an idle OpenMM Context from a pool of the
 * system (made on first need, at most one per concurrent caller) and gives it back afterwards,
 * so concurrent calls never share a Context.
 *
 * Build: the Makefile's `openmm-plugin` target, against the OpenMM wheel's OpenMM.libs:
 *   g++ -std=c++17 -O2 -shared -fPIC -I Sources/EnsemblePluginABI/include -I $LIBS/include \
 *       Sources/Plugins/OpenMM/openmm_plugin.cpp -L $LIBS/lib -lOpenMM -Wl,-rpath,$LIBS/lib \
 *       -o .build/release/libEnsembleOpenMM.so
 */
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "OpenMMCWrapper.h"
#include "ensemble_plugin.h"

namespace {

/// R in kJ/(mol·K) (CODATA 2018, exact; OpenMM's MOLAR_GAS_CONSTANT_R / 1000).
constexpr double gasConstant = 8.31446261815324e-3;
/// Å per nm.
constexpr double angstromPerNm = 10.0;

const char *const validKeys = "system, positions, state, temperature, platform, threads";

/// An error whose text becomes the ABI's error message.
struct Failure : std::exception {
    std::string message;
    explicit Failure(std::string m) : message("openmm: " + std::move(m)) {}
    const char *what() const noexcept override { return message.c_str(); }
};

void writeError(char *error, size_t capacity, const std::string &message) {
    if (error && capacity > 0) std::snprintf(error, capacity, "%s", message.c_str());
}

std::string trim(const std::string &s) {
    size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::string readFile(const std::string &path, const std::string &key) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Failure("cannot read " + key + "=" + path + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Element symbol as the PDB writes it ("CL" → "Cl").
std::string elementCase(std::string e) {
    for (size_t k = 0; k < e.size(); k++) e[k] = k == 0 ? char(std::toupper(e[k])) : char(std::tolower(e[k]));
    return e;
}

/// The element nearest in mass (amu) among common ones, when no PDB names it; "X" if none is
/// within 0.6 amu. Repartitioned hydrogen masses defeat it: give a PDB for such systems.
std::string elementFromMass(double mass) {
    static const std::pair<const char *, double> table[] = {
        {"H", 1.008}, {"He", 4.0026}, {"Li", 6.94}, {"C", 12.011}, {"N", 14.007}, {"O", 15.999},
        {"F", 18.998}, {"Na", 22.990}, {"Mg", 24.305}, {"P", 30.974}, {"S", 32.06}, {"Cl", 35.45},
        {"Ar", 39.948}, {"K", 39.098}, {"Ca", 40.078}, {"Zn", 65.38}, {"Br", 79.904}, {"I", 126.90}};
    const char *best = "X";
    double distance = 0.6;
    for (const auto &entry : table) {
        if (std::fabs(entry.second - mass) < distance) { distance = std::fabs(entry.second - mass); best = entry.first; }
    }
    return best;
}

/// One ATOM/HETATM record of a PDB file.
struct PDBAtom {
    std::string name, element, residue;
    int residueNumber;  ///< 1-based, counted in file order (a new residue when resSeq, name or chain changes)
    double x, y, z;     ///< Å
};

/// The first model's ATOM/HETATM records (fixed columns of the PDB format).
std::vector<PDBAtom> readPDB(const std::string &path) {
    std::istringstream in(readFile(path, "positions"));
    std::vector<PDBAtom> atoms;
    std::string line, lastKey;
    int residues = 0, lineNumber = 0;
    while (std::getline(in, line)) {
        lineNumber++;
        if (line.compare(0, 6, "ENDMDL") == 0) break;
        if (line.compare(0, 6, "ATOM  ") != 0 && line.compare(0, 6, "HETATM") != 0) continue;
        if (line.size() < 54) {
            throw Failure("positions=" + path + " line " + std::to_string(lineNumber) +
                          ": an ATOM/HETATM record shorter than 54 columns (no x, y, z)");
        }
        PDBAtom a;
        a.name = trim(line.substr(12, 4));
        a.residue = trim(line.substr(17, 3));
        std::string key = line.substr(17, 10);  // resName, chain, resSeq, iCode
        if (key != lastKey) { residues++; lastKey = key; }
        a.residueNumber = residues;
        double *xyz[3] = {&a.x, &a.y, &a.z};
        for (int k = 0; k < 3; k++) {
            std::string field = trim(line.substr(30 + 8 * k, 8));
            char *end = nullptr;
            *xyz[k] = std::strtod(field.c_str(), &end);
            if (field.empty() || *end != '\0' || !std::isfinite(*xyz[k])) {
                throw Failure("positions=" + path + " line " + std::to_string(lineNumber) + ": '" + field +
                              "' in columns " + std::to_string(31 + 8 * k) + "-" + std::to_string(38 + 8 * k) +
                              " is not a coordinate");
            }
        }
        a.element = line.size() >= 78 ? elementCase(trim(line.substr(76, 2))) : "";
        atoms.push_back(a);
    }
    if (atoms.empty()) throw Failure("positions=" + path + " holds no ATOM or HETATM record");
    return atoms;
}

/// The parsed `key=value` pairs; unknown keys, repeats and malformed pairs are errors.
std::map<std::string, std::string> parseParameters(const char *text) {
    static const std::set<std::string> known = {"system", "positions", "state", "temperature", "platform", "threads"};
    std::map<std::string, std::string> result;
    std::string all = text ? text : "", token;
    for (size_t i = 0; i <= all.size(); i++) {
        char c = i < all.size() ? all[i] : ';';
        if (c == ';' || std::isspace((unsigned char)c)) {
            if (token.empty()) continue;
            size_t eq = token.find('=');
            if (eq == std::string::npos || eq == 0) {
                throw Failure("malformed parameter '" + token + "': expected key=value (keys: " + validKeys + ")");
            }
            std::string key = token.substr(0, eq);
            if (!known.count(key)) throw Failure("unknown parameter '" + key + "' (valid: " + validKeys + ")");
            if (result.count(key)) throw Failure("parameter '" + key + "' given twice");
            result[key] = token.substr(eq + 1);
            token.clear();
        } else {
            token += c;
        }
    }
    return result;
}

double positiveNumber(const std::string &key, const std::string &value) {
    char *end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !std::isfinite(v) || v <= 0) {
        throw Failure("parameter '" + key + "': '" + value + "' is not a positive number");
    }
    return v;
}

/// Loads OpenMM's platform plugins (the CPU platform and the PME kernels it uses) once per
/// process, from $OPENMM_PLUGIN_DIR or else plugins/ beside the libOpenMM.so actually loaded
/// (the wheel's compiled-in default directory is the build machine's). Skipped when a CPU
/// platform is registered already (e.g. Python's `import openmm` in the same process).
void loadPlatformPlugins() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int i = 0; i < OpenMM_Platform_getNumPlatforms(); i++) {
            if (std::strcmp(OpenMM_Platform_getName(OpenMM_Platform_getPlatform(i)), "CPU") == 0) return;
        }
        std::string directory;
        if (const char *env = std::getenv("OPENMM_PLUGIN_DIR"); env && *env) {
            directory = env;
        } else {
            Dl_info info;
            if (dladdr(reinterpret_cast<void *>(&OpenMM_Platform_getNumPlatforms), &info) && info.dli_fname) {
                std::string library = info.dli_fname;
                directory = library.substr(0, library.find_last_of('/')) + "/plugins";
            } else {
                directory = OpenMM_Platform_getDefaultPluginsDirectory();
            }
        }
        try {
            OpenMM_StringArray_destroy(OpenMM_Platform_loadPluginsFromDirectory(directory.c_str()));
        } catch (const std::exception &) {
            // getPlatformByName reports the missing platform with the load failures
        }
    });
}

/// The platform by name, or a Failure listing the registered ones and the plugin load failures.
OpenMM_Platform *platformNamed(const std::string &name) {
    loadPlatformPlugins();
    std::string available;
    for (int i = 0; i < OpenMM_Platform_getNumPlatforms(); i++) {
        OpenMM_Platform *p = OpenMM_Platform_getPlatform(i);
        if (name == OpenMM_Platform_getName(p)) return p;
        available += std::string(available.empty() ? "" : ", ") + OpenMM_Platform_getName(p);
    }
    std::string failures;
    if (OpenMM_StringArray *f = OpenMM_Platform_getPluginLoadFailures()) {
        for (int i = 0; i < OpenMM_StringArray_getSize(f); i++) failures += std::string("; ") + OpenMM_StringArray_get(f, i);
        OpenMM_StringArray_destroy(f);
    }
    throw Failure("OpenMM " + std::string(OpenMM_Platform_getOpenMMVersion()) + " has no platform '" + name +
                  "' (available: " + available + ")" + (failures.empty() ? "" : " (plugin load failures" + failures + ")"));
}

/// One OpenMM Context with its integrator (never stepped) and a positions buffer.
struct Worker {
    OpenMM_VerletIntegrator *integrator = nullptr;
    OpenMM_Context *context = nullptr;
    OpenMM_Vec3Array *positions = nullptr;
};

std::mutex &contextCreation() {
    static std::mutex m;  // platform default properties are process-wide: set them and create under one lock
    return m;
}

}  // namespace

struct ensemble_system {
    OpenMM_System *system = nullptr;
    int32_t n = 0;
    double kT = 0;  ///< kJ/mol
    std::string platform = "CPU";
    int threads = 1;  ///< CPU platform threads per Context (0: all cores)
    bool hasVirtualSites = false;
    bool periodic = false;
    OpenMM_Vec3 boxVectors[3] = {};  ///< nm (the State's when state= is given, else the System's default)
    std::vector<ensemble_atom> atoms;
    std::vector<double> start;  ///< [n][3] Å
    std::vector<int32_t> bonds;

    mutable std::mutex poolMutex;
    mutable std::vector<Worker *> idle;
    mutable std::vector<Worker *> all;

    /// - Throws: Failure (with OpenMM's message) when the Context cannot be made.
    Worker *makeWorker() const {
        auto *w = new Worker;
        try {
            std::lock_guard<std::mutex> lock(contextCreation());
            OpenMM_Platform *p = platformNamed(platform);
            if (platform == "CPU") {
                unsigned count = threads > 0 ? unsigned(threads) : std::max(1u, std::thread::hardware_concurrency());
                OpenMM_Platform_setPropertyDefaultValue(p, "Threads", std::to_string(count).c_str());
            }
            w->integrator = OpenMM_VerletIntegrator_create(0.001);
            w->context = OpenMM_Context_create_2(system, reinterpret_cast<OpenMM_Integrator *>(w->integrator), p);
            if (periodic) OpenMM_Context_setPeriodicBoxVectors(w->context, &boxVectors[0], &boxVectors[1], &boxVectors[2]);
            w->positions = OpenMM_Vec3Array_create(n);
        } catch (const Failure &) {
            release(w);
            throw;
        } catch (const std::exception &e) {
            release(w);
            throw Failure("cannot create an OpenMM Context on platform " + platform + ": " + e.what());
        }
        return w;
    }

    static void release(Worker *w) {
        if (w->positions) OpenMM_Vec3Array_destroy(w->positions);
        if (w->context) OpenMM_Context_destroy(w->context);
        if (w->integrator) OpenMM_VerletIntegrator_destroy(w->integrator);
        delete w;
    }

    Worker *acquire() const {
        {
            std::lock_guard<std::mutex> lock(poolMutex);
            if (!idle.empty()) {
                Worker *w = idle.back();
                idle.pop_back();
                return w;
            }
        }
        Worker *w = makeWorker();
        std::lock_guard<std::mutex> lock(poolMutex);
        all.push_back(w);
        return w;
    }

    void giveBack(Worker *w) const {
        std::lock_guard<std::mutex> lock(poolMutex);
        idle.push_back(w);
    }

    ~ensemble_system() {
        for (Worker *w : all) release(w);
        if (system) OpenMM_System_destroy(system);
    }
};

namespace {

/// Reads system=, positions= and state=, and checks that they describe the same particles.
void load(ensemble_system &s, const std::map<std::string, std::string> &p) {
    auto it = p.find("system");
    if (it == p.end()) {
        throw Failure("parameter 'system' is required: system=FILE.xml, an OpenMM System serialized by "
                      "XmlSerializer.serialize(system) (valid keys: " + std::string(validKeys) + ")");
    }
    const std::string systemPath = it->second;
    std::string xml = readFile(systemPath, "system");
    if (xml.find("<System") == std::string::npos) {
        throw Failure("system=" + systemPath + " is not an OpenMM System XML (no <System> element; "
                      "write one with openmm.XmlSerializer.serialize(system))");
    }
    try {
        s.system = OpenMM_XmlSerializer_deserializeSystem(xml.c_str());
    } catch (const std::exception &e) {
        throw Failure("system=" + systemPath + " cannot be read as an OpenMM System: " + e.what());
    }
    if (!s.system) throw Failure("system=" + systemPath + " cannot be read as an OpenMM System");
    s.n = OpenMM_System_getNumParticles(s.system);
    if (s.n <= 0) throw Failure("system=" + systemPath + " has no particles");
    for (int i = 0; i < s.n; i++) s.hasVirtualSites = s.hasVirtualSites || OpenMM_System_isVirtualSite(s.system, i);
    s.periodic = OpenMM_System_usesPeriodicBoundaryConditions(s.system);
    OpenMM_System_getDefaultPeriodicBoxVectors(s.system, &s.boxVectors[0], &s.boxVectors[1], &s.boxVectors[2]);

    auto positions = p.find("positions"), state = p.find("state");
    if (positions == p.end() && state == p.end()) {
        throw Failure("give start coordinates: positions=FILE.pdb (also names the atoms) and/or state=FILE.xml "
                      "(an OpenMM State with positions; its box replaces the System's default)");
    }
    std::vector<PDBAtom> pdb;
    if (positions != p.end()) {
        pdb = readPDB(positions->second);
        if ((int)pdb.size() != s.n) {
            throw Failure("positions=" + positions->second + " has " + std::to_string(pdb.size()) + " atoms, system=" +
                          systemPath + " has " + std::to_string(s.n) + " particles");
        }
    }
    s.start.assign(3 * size_t(s.n), 0.0);
    if (state != p.end()) {
        std::string text = readFile(state->second, "state");
        if (text.find("<State") == std::string::npos) {
            throw Failure("state=" + state->second + " is not an OpenMM State XML (no <State> element; write one with "
                          "openmm.XmlSerializer.serialize(context.getState(getPositions=True)))");
        }
        OpenMM_State *st = nullptr;
        try {
            st = OpenMM_XmlSerializer_deserializeState(text.c_str());
        } catch (const std::exception &e) {
            throw Failure("state=" + state->second + " cannot be read as an OpenMM State: " + e.what());
        }
        if (!st) throw Failure("state=" + state->second + " cannot be read as an OpenMM State");
        try {
            const OpenMM_Vec3Array *x = OpenMM_State_getPositions(st);
            if (OpenMM_Vec3Array_getSize(x) != s.n) {
                throw Failure("state=" + state->second + " has " + std::to_string(OpenMM_Vec3Array_getSize(x)) +
                              " positions, system=" + systemPath + " has " + std::to_string(s.n) + " particles");
            }
            for (int i = 0; i < s.n; i++) {
                const OpenMM_Vec3 *v = OpenMM_Vec3Array_get(x, i);
                s.start[3 * i] = v->x * angstromPerNm;
                s.start[3 * i + 1] = v->y * angstromPerNm;
                s.start[3 * i + 2] = v->z * angstromPerNm;
            }
            if (s.periodic) OpenMM_State_getPeriodicBoxVectors(st, &s.boxVectors[0], &s.boxVectors[1], &s.boxVectors[2]);
        } catch (const Failure &) {
            OpenMM_State_destroy(st);
            throw;
        } catch (const std::exception &e) {
            OpenMM_State_destroy(st);
            throw Failure("state=" + state->second + " holds no positions (serialize it from "
                          "context.getState(getPositions=True)): " + e.what());
        }
        OpenMM_State_destroy(st);
    } else {
        for (int i = 0; i < s.n; i++) {
            s.start[3 * i] = pdb[i].x;
            s.start[3 * i + 1] = pdb[i].y;
            s.start[3 * i + 2] = pdb[i].z;
        }
    }

    s.atoms.resize(s.n);
    for (int i = 0; i < s.n; i++) {
        ensemble_atom &a = s.atoms[i];
        std::memset(&a, 0, sizeof a);
        a.mass = OpenMM_System_getParticleMass(s.system, i);
        std::string name = pdb.empty() ? "X" + std::to_string(i + 1) : pdb[i].name;
        std::string element = pdb.empty() || pdb[i].element.empty() ? elementFromMass(a.mass) : pdb[i].element;
        std::string residue = pdb.empty() ? "SYS" : pdb[i].residue;
        std::snprintf(a.name, sizeof a.name, "%s", name.c_str());
        std::snprintf(a.element, sizeof a.element, "%s", element.c_str());
        std::snprintf(a.residue, sizeof a.residue, "%s", residue.c_str());
        a.residue_number = pdb.empty() ? 1 : pdb[i].residueNumber;
    }
}

/// A rectangular box from the box vectors, or a Failure for a triclinic one.
void checkBox(const ensemble_system &s) {
    if (!s.periodic) return;
    const OpenMM_Vec3 *v = s.boxVectors;
    double scale = std::max({v[0].x, v[1].y, v[2].z});
    double off = std::max({std::fabs(v[0].y), std::fabs(v[0].z), std::fabs(v[1].x), std::fabs(v[1].z),
                           std::fabs(v[2].x), std::fabs(v[2].y)});
    if (!(v[0].x > 0 && v[1].y > 0 && v[2].z > 0) || off > 1e-9 * scale) {
        char text[400];
        std::snprintf(text, sizeof text,
                      "the periodic box is triclinic or degenerate (a = (%g, %g, %g), b = (%g, %g, %g), c = (%g, %g, %g) nm); "
                      "ensemble's periodic cells are rectangular: build the system in a rectangular box "
                      "(e.g. Modeller.addSolvent(..., boxSize=Vec3(x, y, z)*nanometer) or boxShape='cube')",
                      v[0].x, v[0].y, v[0].z, v[1].x, v[1].y, v[1].z, v[2].x, v[2].y, v[2].z);
        throw Failure(text);
    }
}

/// Bonds: every HarmonicBondForce pair (a force under OpenMM's default name "HarmonicBondForce")
/// and every constraint, once each, sorted; a constraint between two hydrogens (the H–H side of
/// a rigid water) is not a covalent bond and is left out.
void collectBonds(ensemble_system &s) {
    std::set<std::pair<int, int>> pairs;
    auto add = [&](int i, int j) {
        if (i == j || i < 0 || j < 0 || i >= s.n || j >= s.n) return;
        pairs.insert({std::min(i, j), std::max(i, j)});
    };
    for (int f = 0; f < OpenMM_System_getNumForces(s.system); f++) {
        OpenMM_Force *force = OpenMM_System_getForce(s.system, f);
        if (std::strcmp(OpenMM_Force_getName(force), "HarmonicBondForce") != 0) continue;
        auto *bondForce = reinterpret_cast<OpenMM_HarmonicBondForce *>(force);
        for (int b = 0; b < OpenMM_HarmonicBondForce_getNumBonds(bondForce); b++) {
            int i, j;
            double length, k;
            OpenMM_HarmonicBondForce_getBondParameters(bondForce, b, &i, &j, &length, &k);
            add(i, j);
        }
    }
    for (int c = 0; c < OpenMM_System_getNumConstraints(s.system); c++) {
        int i, j;
        double distance;
        OpenMM_System_getConstraintParameters(s.system, c, &i, &j, &distance);
        if (i < 0 || j < 0 || i >= s.n || j >= s.n) continue;
        if (std::strcmp(s.atoms[i].element, "H") == 0 && std::strcmp(s.atoms[j].element, "H") == 0) continue;
        add(i, j);
    }
    for (const auto &pair : pairs) {
        s.bonds.push_back(pair.first);
        s.bonds.push_back(pair.second);
    }
}

ensemble_system *create(const char *parameters, char *error, size_t capacity) {
    auto *s = new ensemble_system;
    try {
        auto p = parseParameters(parameters);
        double temperature = p.count("temperature") ? positiveNumber("temperature", p["temperature"]) : 300.0;
        s->kT = gasConstant * temperature;
        if (p.count("platform")) {
            std::string name = p["platform"], lower = name;
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            if (lower == "cpu") s->platform = "CPU";
            else if (lower == "reference") s->platform = "Reference";
            else throw Failure("parameter 'platform': '" + name + "' is not one of CPU, Reference");
        }
        if (p.count("threads")) {
            const std::string &v = p["threads"];
            char *end = nullptr;
            long t = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || t < 0 || t > 4096) {
                throw Failure("parameter 'threads': '" + v + "' is not a whole number >= 0 (0: all cores)");
            }
            s->threads = int(t);
        }
        load(*s, p);
        checkBox(*s);
        collectBonds(*s);
        s->giveBack(s->acquire());  // a first Context now, so that a bad platform or force fails in create
    } catch (const std::exception &e) {
        writeError(error, capacity, e.what());
        delete s;
        return nullptr;
    }
    return s;
}

void destroy(ensemble_system *s) { delete s; }
int32_t particleCount(const ensemble_system *s) { return s->n; }
int32_t dimension(const ensemble_system *) { return 3; }

int32_t box(const ensemble_system *s, double *edges) {
    if (!s->periodic) return 0;
    edges[0] = s->boxVectors[0].x * angstromPerNm;
    edges[1] = s->boxVectors[1].y * angstromPerNm;
    edges[2] = s->boxVectors[2].z * angstromPerNm;
    return 1;
}

double lengthUnitAngstrom(const ensemble_system *) { return 1.0; }

int32_t evaluate(const ensemble_system *s, int64_t batch, const double *positions, double *energies,
                 double *gradients, char *error, size_t capacity) {
    Worker *w = nullptr;
    try {
        w = s->acquire();
        const int n = s->n;
        const int types = OpenMM_State_Energy | (gradients ? OpenMM_State_Forces : 0);
        const double scale = 1.0 / s->kT;                   // U (kJ/mol) → u
        const double gradientScale = -scale / angstromPerNm;  // F (kJ/mol/nm) → ∇u (1/Å)
        for (int64_t b = 0; b < batch; b++) {
            const double *x = positions + b * 3 * n;
            for (int i = 0; i < n; i++) {
                OpenMM_Vec3 v = {x[3 * i] / angstromPerNm, x[3 * i + 1] / angstromPerNm, x[3 * i + 2] / angstromPerNm};
                OpenMM_Vec3Array_set(w->positions, i, v);
            }
            OpenMM_Context_setPositions(w->context, w->positions);
            if (s->hasVirtualSites) OpenMM_Context_computeVirtualSites(w->context);
            OpenMM_State *state = OpenMM_Context_getState(w->context, types, 0);
            double u = OpenMM_State_getPotentialEnergy(state) * scale;
            energies[b] = u;
            bool finite = std::isfinite(u);
            if (gradients) {
                const OpenMM_Vec3Array *f = OpenMM_State_getForces(state);
                double *g = gradients + b * 3 * n;
                for (int i = 0; i < n; i++) {
                    const OpenMM_Vec3 *v = OpenMM_Vec3Array_get(f, i);
                    g[3 * i] = v->x * gradientScale;
                    g[3 * i + 1] = v->y * gradientScale;
                    g[3 * i + 2] = v->z * gradientScale;
                    finite = finite && std::isfinite(g[3 * i]) && std::isfinite(g[3 * i + 1]) && std::isfinite(g[3 * i + 2]);
                }
            }
            OpenMM_State_destroy(state);
            if (!finite) {
                throw Failure("configuration " + std::to_string(b) + " of the batch has a non-finite " +
                              (std::isfinite(u) ? "force" : "energy (u = " + std::to_string(u) + ")") +
                              " (atoms on top of each other, or coordinates far outside the system)");
            }
        }
    } catch (const std::exception &e) {
        if (w) s->giveBack(w);
        writeError(error, capacity, dynamic_cast<const Failure *>(&e) ? e.what() : std::string("openmm: OpenMM failed: ") + e.what());
        return 1;
    }
    s->giveBack(w);
    return 0;
}

int32_t atom(const ensemble_system *s, int32_t index, ensemble_atom *out) {
    if (index < 0 || index >= s->n) return 1;
    *out = s->atoms[index];
    return 0;
}

int32_t initialPositions(const ensemble_system *s, double *positions) {
    std::copy(s->start.begin(), s->start.end(), positions);
    return 0;
}

int32_t bonds(const ensemble_system *s, int32_t *pairs, int32_t capacity) {
    int32_t count = int32_t(s->bonds.size() / 2);
    for (int32_t k = 0; k < std::min(count, capacity); k++) {
        pairs[2 * k] = s->bonds[2 * k];
        pairs[2 * k + 1] = s->bonds[2 * k + 1];
    }
    return count;
}

const char *const parametersHelp =
    "system=FILE.xml          an OpenMM System serialized by XmlSerializer.serialize(system) (required); any force\n"
    "                         field, implicit or explicit solvent; a periodic box must be rectangular\n"
    "positions=FILE.pdb       start coordinates in Å, atom names, elements and residues (e.g. PDBFile.writeFile);\n"
    "                         the atom order must be the System's\n"
    "state=FILE.xml           an OpenMM State (XmlSerializer.serialize(context.getState(getPositions=True))):\n"
    "                         start coordinates and periodic box; with positions= the PDB still names the atoms\n"
    "temperature=K            temperature for u = U/kT, kelvin (default 300; kT = 8.31446261815324e-3 kJ/mol/K · T)\n"
    "platform=CPU|Reference   OpenMM platform (default CPU: single-precision nonbonded terms, ~1e-6 relative;\n"
    "                         Reference: double precision, slower)\n"
    "threads=N                CPU platform threads per evaluate call (default 1: the host already splits batches\n"
    "                         over threads, each with its own OpenMM Context; 0 = all cores)";

const ensemble_plugin table = {
    ENSEMBLE_PLUGIN_ABI_VERSION,
    sizeof(ensemble_plugin),
    "openmm",
    "1.0.0",
    "any OpenMM System (XML) through OpenMM's C API, CPU or Reference platform; lengths in Å, u = U/kT",
    parametersHelp,
    create,
    destroy,
    particleCount,
    dimension,
    box,
    lengthUnitAngstrom,
    evaluate,
    atom,
    initialPositions,
    bonds,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const ensemble_plugin *ensemble_plugin_entry(void) { return &table; }
