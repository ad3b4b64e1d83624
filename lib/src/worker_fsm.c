//  worker_fsm.c - stub, being written
#include "cartmq/log.h"
