#include "udp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "udp_page.h"

typedef struct udp_reg {
    struct udp_reg *next;
    unsigned long owner;
    int port;
    char node[RULES_MAX_NAME + 1];
} udp_reg;

struct udp {
    epx *x;
    udp_reg *regs;
    int nregs;
    unsigned long long gen;             /* last published; never 0 */
    unsigned long long rules_gen;       /* x->rules.gen when it was */
    udp_page *page;                     /* NULL: no page (see udp_new) */
    char path[256];
};

/* Make, size and map the page file.  0, or -1 (errno; nothing left). */
static int page_open(udp *u)
{
    const char *dir = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (!dir || dir[0] != '/' || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
        access(dir, W_OK) < 0)
        dir = "/tmp";
    int n = snprintf(u->path, sizeof u->path, "%s/epmdpxy-%d-%d.udpgen", dir, (int)getpid(),
                     u->x->control_port);
    if (n < 0 || (size_t)n >= sizeof u->path) {
        u->path[0] = 0;
        errno = ENAMETOOLONG;
        return -1;
    }
    int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(u->path, flags, 0644);
    if (fd < 0 && errno == EEXIST && lstat(u->path, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_uid == geteuid()) {
        /* left by an earlier daemon with our pid that was killed: ours now */
        unlink(u->path);
        fd = open(u->path, flags, 0644);
    }
    if (fd < 0) {
        u->path[0] = 0;
        return -1;
    }
    void *m = MAP_FAILED;
    if (fchmod(fd, 0644) == 0 && ftruncate(fd, UDP_PAGE_SIZE) == 0)
        m = mmap(NULL, UDP_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) {
        unlink(u->path);
        u->path[0] = 0;
        errno = e;
        return -1;
    }
    u->page = m;
    memcpy(u->page->magic, UDP_PAGE_MAGIC, sizeof u->page->magic);
    u->page->pid = (uint32_t)getpid();
    u->page->control_port = (uint32_t)u->x->control_port;
    __atomic_store_n(&u->page->gen, u->gen, __ATOMIC_RELEASE);
    return 0;
}

udp *udp_new(epx *x)
{
    udp *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->x = x;
    u->gen = 1;
    u->rules_gen = x->rules.gen;
    if (page_open(u) < 0)
        log_msg(LOG_ERR, "udp: no generation page (%s): members' UDP passes uncut",
                strerror(errno));
    else
        log_msg(LOG_INFO, "udp: generation page %s", u->path);
    return u;
}

void udp_free(udp *u)
{
    if (!u)
        return;
    if (u->page) {
        /* a shim that maps it stops trusting its cache, then forgets it */
        __atomic_store_n(&u->page->closed, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&u->page->gen, u->gen + 1, __ATOMIC_RELEASE);
        munmap(u->page, UDP_PAGE_SIZE);
        unlink(u->path);
    }
    while (u->regs) {
        udp_reg *r = u->regs;
        u->regs = r->next;
        free(r);
    }
    free(u);
}

/* A verdict may have changed: a new generation. */
static void publish(udp *u)
{
    u->gen++;
    if (u->page)
        __atomic_store_n(&u->page->gen, u->gen, __ATOMIC_RELEASE);
}

void udp_sync(udp *u)
{
    if (u && u->x->rules.gen != u->rules_gen) {
        u->rules_gen = u->x->rules.gen;
        publish(u);
    }
}

int udp_register(udp *u, unsigned long owner, const char *node, int port, char *err,
                 size_t errlen)
{
    for (udp_reg *r = u->regs; r; r = r->next)
        if (r->owner == owner && r->port == port && !strcmp(r->node, node))
            return 0;
    if (u->nregs >= UDP_MAX_PORTS) {
        snprintf(err, errlen, "too many UDP ports: at most %d", UDP_MAX_PORTS);
        return -1;
    }
    udp_reg *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->owner = owner;
    r->port = port;
    snprintf(r->node, sizeof r->node, "%s", node);
    r->next = u->regs;
    u->regs = r;
    u->nregs++;
    publish(u);
    log_msg(LOG_INFO, "udp: %s has UDP port %d", node, port);
    events_add(&u->x->ev, loop_now_ms(), "app_udp", "\"node\":%s,\"port\":%d", events_q(node),
               port);
    return 0;
}

/* Unlink and free *pp. */
static void reg_drop(udp *u, udp_reg **pp, const char *why)
{
    udp_reg *r = *pp;
    log_msg(LOG_INFO, "udp: %s no longer has UDP port %d (%s)", r->node, r->port, why);
    events_add(&u->x->ev, loop_now_ms(), "app_unudp", "\"node\":%s,\"port\":%d",
               events_q(r->node), r->port);
    *pp = r->next;
    u->nregs--;
    free(r);
    publish(u);
}

int udp_unregister(udp *u, unsigned long owner, const char *node, int port)
{
    for (udp_reg **pp = &u->regs; *pp; pp = &(*pp)->next)
        if ((*pp)->owner == owner && (*pp)->port == port && !strcmp((*pp)->node, node)) {
            reg_drop(u, pp, "closed");
            return 1;
        }
    return 0;
}

void udp_owner_gone(udp *u, unsigned long owner)
{
    if (!u)
        return;
    for (udp_reg **pp = &u->regs; *pp;)
        if ((*pp)->owner == owner)
            reg_drop(u, pp, "its process left");
        else
            pp = &(*pp)->next;
}

void udp_route(udp *u, const char *node, int port, sbuf *o)
{
    udp_sync(u);   /* the answer is for the generation it names */
    const udp_reg *to = NULL;
    for (const udp_reg *r = u->regs; r && !to; r = r->next)
        if (r->port == port && strcmp(r->node, node) != 0)
            to = r;
    sbuf_printf(o, "{\"gen\":%llu,\"member\":%s", u->gen, to ? "true" : "false");
    if (to)
        sbuf_printf(o, ",\"blocked\":%s",
                    rules_blocked(&u->x->rules, node, to->node) ? "true" : "false");
    if (u->page) {
        sbuf_addstr(o, ",\"genfile\":");
        sbuf_json_str(o, u->path, strlen(u->path));
    }
    if (to) {
        sbuf_addstr(o, ",\"to\":");
        sbuf_json_str(o, to->node, strlen(to->node));
    }
    sbuf_addstr(o, "}");
}

void udp_json(const udp *u, sbuf *o)
{
    sbuf_addstr(o, "{\"ports\":[");
    int first = 1;
    for (const udp_reg *r = u ? u->regs : NULL; r; r = r->next) {
        sbuf_addstr(o, first ? "{\"node\":" : ",{\"node\":");
        first = 0;
        sbuf_json_str(o, r->node, strlen(r->node));
        sbuf_printf(o, ",\"port\":%d}", r->port);
    }
    sbuf_printf(o, "],\"gen\":%llu,\"genfile\":", u ? u->gen : 0ULL);
    if (u && u->page)
        sbuf_json_str(o, u->path, strlen(u->path));
    else
        sbuf_addstr(o, "null");
    sbuf_addstr(o, "}");
}
