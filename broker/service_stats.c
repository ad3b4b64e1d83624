//  service_stats.c - stub, being written
#include "cartmq/log.h"
