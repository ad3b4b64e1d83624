//  bench.c - stub, being written
#include "cartmq/log.h"
