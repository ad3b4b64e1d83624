//  cart_service.c - stub, being written
#include "cartmq/log.h"
