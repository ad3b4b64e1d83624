//  broker_shell.c - stub, being written
#include "cartmq/log.h"
