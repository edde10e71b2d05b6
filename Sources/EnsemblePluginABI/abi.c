/* The ABI target is header-only; SwiftPM needs one source file per C target. */
#include "ensemble_plugin.h"
