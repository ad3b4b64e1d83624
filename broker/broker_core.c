//  broker_core.c - stub, being written
#include "cartmq/log.h"
