//  cart_codec.c - stub, being written
#include "cartmq/log.h"
