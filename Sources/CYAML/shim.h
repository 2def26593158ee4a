#ifndef GRIDLET_CYAML_SHIM_H
#define GRIDLET_CYAML_SHIM_H
#include <yaml.h>
#endif
