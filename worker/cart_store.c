//  cart_store.c - stub, being written
#include "cartmq/log.h"
