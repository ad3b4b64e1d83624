//  broker_list.h - intrusive doubly-linked lists for the routing core
//
//  The core's lists (a service's queue and ready-queue, a worker's
//  requests in flight, workers by last contact and by last send) hold
//  objects that sit in several lists at once and move on every message.
//  Linking them through fields inside the objects makes every add, move
//  and removal O(1) with no allocation, so dispatching a request mallocs
//  nothing and an idle worker costs no list nodes (with zlistx each list
//  membership was a node of its own, and a worker's in-flight list was
//  two more allocations: about 250 bytes per worker).
//
//  A link that is in no list has next == NULL.

#ifndef BROKER_LIST_H
#define BROKER_LIST_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct _broker_link_t broker_link_t;

struct _broker_link_t {
    broker_link_t *prev;
    broker_link_t *next;
};

typedef struct {
    broker_link_t head;  //  a ring through head; empty when it is alone
    size_t size;
} broker_list_t;

//  The object that holds a link, or NULL for a NULL link:
//  BROKER_LIST_ITEM (link, worker_t, ready_link).
#define BROKER_LIST_ITEM(link, type, member)                                   \
    ((type *) broker_list_item_at ((link), offsetof (type, member)))

static inline void *
broker_list_item_at (broker_link_t *link, size_t offset)
{
    return link ? (void *) ((char *) link - offset) : NULL;
}

static inline void
broker_list_init (broker_list_t *self)
{
    self->head.prev = &self->head;
    self->head.next = &self->head;
    self->size = 0;
}

static inline bool
broker_link_is_listed (const broker_link_t *link)
{
    return link->next != NULL;
}

static inline size_t
broker_list_size (const broker_list_t *self)
{
    return self->size;
}

static inline void
broker_list_insert_after (broker_list_t *self, broker_link_t *at,
                          broker_link_t *link)
{
    assert (!broker_link_is_listed (link));
    link->prev = at;
    link->next = at->next;
    at->next->prev = link;
    at->next = link;
    self->size++;
}

static inline void
broker_list_add_end (broker_list_t *self, broker_link_t *link)
{
    broker_list_insert_after (self, self->head.prev, link);
}

static inline void
broker_list_add_start (broker_list_t *self, broker_link_t *link)
{
    broker_list_insert_after (self, &self->head, link);
}

static inline void
broker_list_remove (broker_list_t *self, broker_link_t *link)
{
    assert (broker_link_is_listed (link) && self->size > 0);
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->prev = NULL;
    link->next = NULL;
    self->size--;
}

static inline void
broker_list_move_end (broker_list_t *self, broker_link_t *link)
{
    broker_list_remove (self, link);
    broker_list_add_end (self, link);
}

static inline broker_link_t *
broker_list_first (broker_list_t *self)
{
    return self->head.next == &self->head ? NULL : self->head.next;
}

static inline broker_link_t *
broker_list_last (broker_list_t *self)
{
    return self->head.prev == &self->head ? NULL : self->head.prev;
}

//  The link before this one, or NULL at the front.
static inline broker_link_t *
broker_list_prev (broker_list_t *self, broker_link_t *link)
{
    return link->prev == &self->head ? NULL : link->prev;
}

//  The link after this one, or NULL at the end. The list's own head
//  (&list->head) gives the first link, so a walk may start before it.
static inline broker_link_t *
broker_list_next (broker_list_t *self, broker_link_t *link)
{
    return link->next == &self->head ? NULL : link->next;
}

#endif
