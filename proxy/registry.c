#include "registry.h"

#include <stdlib.h>
#include <string.h>

void registry_init(registry *r, int debug)
{
    memset(r, 0, sizeof *r);
    r->max_unused = debug ? REGISTRY_MAX_UNUSED_DEBUG : REGISTRY_MAX_UNUSED;
}

static void free_list(reg_node *n)
{
    while (n) {
        reg_node *next = n->next;
        free(n);
        n = next;
    }
}

void registry_free(registry *r)
{
    free_list(r->reg);
    free_list(r->unused);
    memset(r, 0, sizeof *r);
}

static int same(const reg_node *n, const uint8_t *name, size_t len)
{
    return n->namelen == len && memcmp(n->name, name, len) == 0;
}

reg_node *registry_find(const registry *r, const uint8_t *name, size_t len)
{
    for (reg_node *n = r->reg; n; n = n->next)
        if (same(n, name, len))
            return n;
    return NULL;
}

reg_node *registry_find_fd(const registry *r, int fd)
{
    for (reg_node *n = r->reg; n; n = n->next)
        if (n->reg_fd == fd)
            return n;
    return NULL;
}

/* Counters 0..3 are reserved by the distribution; epmd never hands them out. */
static uint32_t bump(uint32_t c)
{
    c++;
    return c < 4 ? 4 : c;
}

/* Take the unused entry with this name out of the FIFO, or NULL. */
static reg_node *take_unused(registry *r, const uint8_t *name, size_t len)
{
    reg_node *prev = NULL;
    for (reg_node *n = r->unused; n; prev = n, n = n->next) {
        if (!same(n, name, len))
            continue;
        if (prev)
            prev->next = n->next;
        else
            r->unused = n->next;
        if (r->unused_tail == n)
            r->unused_tail = prev;
        r->nunused--;
        return n;
    }
    return NULL;
}

reg_node *registry_register(registry *r, const epmd_alive2 *a, time_t now)
{
    if (registry_find(r, a->name, a->namelen))
        return NULL;
    reg_node *n = take_unused(r, a->name, a->namelen);
    if (n) {
        n->counter = bump(n->counter);             /* same name again: +1 */
    } else if (r->nunused > r->max_unused) {
        n = r->unused;                             /* steal the oldest, keep its counter */
        r->unused = n->next;
        if (!r->unused)
            r->unused_tail = NULL;
        r->nunused--;
    } else {
        n = calloc(1, sizeof *n);
        if (!n)
            return NULL;
        n->counter = bump((uint32_t)now);          /* a new name: time + 1 */
    }
    uint32_t counter = n->counter;
    memset(n, 0, sizeof *n);
    n->counter = counter;
    memcpy(n->name, a->name, a->namelen);
    n->namelen = a->namelen;
    memcpy(n->extra, a->extra, a->extralen);
    n->extralen = a->extralen;
    n->port = a->port;
    n->nodetype = a->nodetype;
    n->protocol = a->protocol;
    n->highvsn = a->highvsn;
    n->lowvsn = a->lowvsn;
    n->active = 1;
    n->reg_fd = -1;
    n->proxy_fd = -1;
    n->next = r->reg;
    r->reg = n;
    r->nreg++;
    return n;
}

void registry_unregister(registry *r, reg_node *n)
{
    reg_node **pp = &r->reg;
    while (*pp && *pp != n)
        pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = n->next;
    r->nreg--;
    n->active = 0;
    n->next = NULL;
    if (r->unused_tail)
        r->unused_tail->next = n;
    else
        r->unused = n;
    r->unused_tail = n;
    r->nunused++;
}

void registry_as_alive2(const reg_node *n, epmd_alive2 *out)
{
    out->port = n->port;
    out->nodetype = n->nodetype;
    out->protocol = n->protocol;
    out->highvsn = n->highvsn;
    out->lowvsn = n->lowvsn;
    out->name = (const uint8_t *)n->name;
    out->namelen = n->namelen;
    out->extra = n->extra;
    out->extralen = n->extralen;
}
