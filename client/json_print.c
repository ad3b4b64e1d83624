//  json_print.c - stub, being written
#include "cartmq/log.h"
