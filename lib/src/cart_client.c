//  cart_client.c - stub, being written
#include "cartmq/log.h"
