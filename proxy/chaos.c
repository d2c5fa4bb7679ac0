#include "chaos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "epmd_srv.h"
#include "faults.h"
#include "log.h"
#include "proxy.h"
#include "units.h"

struct chaos_timed {
    struct chaos_timed *prev, *next;
    chaos *c;
    unsigned long tag;
    loop_timer *timer;
    long long end_ms;
    char what[256];
};

/* One flapping spec.  Phases alternate, starting down (cut):
 *   DOWN --down_ms--> UP (its pairs fixed) --up_ms--> DOWN ...
 * and at ends_ms (if any) it ends fixed.  Invariant: exactly one timer is
 * pending while it lives; its cut pairs carry tag. */
typedef struct flap {
    struct flap *prev, *next;
    chaos *c;
    long id;
    unsigned long tag;
    char *args;
    size_t argslen;
    long long up_ms, down_ms, ends_ms;
    int down;                   /* cut now */
    unsigned long cycles;
    loop_timer *timer;
} flap;

/* The nemesis schedule.  Step k (from 1) partitions at start + (k-1)*every
 * and heals heal_ms later; at ends_ms it ends healed.  Invariant while
 * running: `timer` is the one pending timer (the next partition, heal or
 * end); the partition's pairs carry tag. */
typedef struct nemesis_run {
    int running;
    nemesis_shape shape;
    uint64_t seed, rng;
    unsigned long tag;
    long long every_ms, heal_ms, start_ms, ends_ms;
    unsigned long step;
    int partitioned;
    loop_timer *timer;
} nemesis_run;

struct chaos {
    epx *x;
    unsigned long next_tag;
    chaos_timed *timed;
    int ntimed;
    flap *flaps;
    int nflaps;
    long next_flap;
    nemesis_run nem;
};

chaos *chaos_new(epx *x)
{
    chaos *c = calloc(1, sizeof *c);
    if (c)
        c->x = x;
    return c;
}

unsigned long chaos_tag(chaos *c)
{
    return ++c->next_tag;
}

/* The rules changed by a timer: links and held EPMD lookups follow, as
 * after a command (control.c rules_changed). */
static void changed(chaos *c)
{
    if (c->x->proxy)
        proxy_rules_changed(c->x->proxy);
    if (c->x->epmd)
        epmd_srv_rules_changed(c->x->epmd);
}

/* ---- timed commands ------------------------------------------------------ */

static void timed_unlink(chaos *c, chaos_timed *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        c->timed = t->next;
    if (t->next)
        t->next->prev = t->prev;
    c->ntimed--;
    free(t);
}

static void timed_fired(void *ctx)
{
    chaos_timed *t = ctx;
    chaos *c = t->c;
    epx *x = c->x;
    t->timer = NULL;
    int pairs = rules_remove_tag(&x->rules, t->tag);
    int kinds = faults_undo(&x->faults, t->tag);
    events_add(&x->ev, loop_now_ms(), "expired", "\"command\":%s,\"pairs\":%d,\"faults\":%d",
               events_q(t->what), pairs, kinds);
    log_msg(LOG_INFO, "control: time is up for %s (%d pairs, %d faults removed)", t->what, pairs,
            kinds);
    timed_unlink(c, t);
    changed(c);
}

chaos_timed *chaos_timed_arm(chaos *c, unsigned long tag, long long for_ms, const char *what,
                             size_t whatlen, char *err, size_t errlen)
{
    if (c->ntimed >= CHAOS_MAX_TIMED) {
        snprintf(err, errlen, "too many timed commands pending: at most %d", CHAOS_MAX_TIMED);
        return NULL;
    }
    chaos_timed *t = calloc(1, sizeof *t);
    if (!t || !(t->timer = loop_timer_in(c->x->loop, for_ms, timed_fired, t))) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->c = c;
    t->tag = tag;
    t->end_ms = loop_now_ms() + for_ms;
    snprintf(t->what, sizeof t->what, "%.*s", (int)(whatlen > 250 ? 250 : whatlen), what);
    t->next = c->timed;
    if (c->timed)
        c->timed->prev = t;
    c->timed = t;
    c->ntimed++;
    return t;
}

void chaos_timed_cancel(chaos *c, chaos_timed *t)
{
    loop_timer_del(c->x->loop, t->timer);
    timed_unlink(c, t);
}

/* ---- flaps ---------------------------------------------------------------- */

static void flap_fired(void *ctx);

static void flap_free(chaos *c, flap *f)
{
    loop_timer_del(c->x->loop, f->timer);
    if (f->prev)
        f->prev->next = f->next;
    else
        c->flaps = f->next;
    if (f->next)
        f->next->prev = f->prev;
    c->nflaps--;
    free(f->args);
    free(f);
}

/* Cut (down) or fix the flap's pairs.  The number of pairs changed. */
static int flap_set(flap *f, int down)
{
    static rules_spec spec;
    epx *x = f->c->x;
    char err[256];
    int n;
    if (!down)
        return rules_remove_tag(&x->rules, f->tag);
    if (rules_parse_spec(f->args, f->argslen, &spec, err, sizeof err) < 0)
        return 0;   /* parsed once already: cannot happen */
    x->rules.tag = f->tag;
    n = rules_apply(&x->rules, &spec, 1);
    x->rules.tag = 0;
    if (n < 0)
        log_msg(LOG_ERR, "flap %ld: cannot cut %.*s (rule limits or memory)", f->id,
                (int)f->argslen, f->args);
    return n < 0 ? 0 : n;
}

/* Arm the timer for the phase that lasts ms from now (or for the end). */
static int flap_arm(flap *f, long long ms)
{
    long long now = loop_now_ms(), at = now + ms;
    if (f->ends_ms && at > f->ends_ms)
        at = f->ends_ms;
    f->timer = loop_timer_at(f->c->x->loop, at, flap_fired, f);
    return f->timer ? 0 : -1;
}

static void flap_fired(void *ctx)
{
    flap *f = ctx;
    chaos *c = f->c;
    epx *x = c->x;
    long long now = loop_now_ms();
    f->timer = NULL;
    if (f->ends_ms && now >= f->ends_ms) {
        int n = flap_set(f, 0);
        events_add(&x->ev, now, "flap_end", "\"flap\":%ld,\"spec\":%s,\"cycles\":%lu,\"pairs\":%d",
                   f->id, events_qn(f->args, f->argslen), f->cycles, n);
        flap_free(c, f);
        changed(c);
        return;
    }
    f->down = !f->down;
    if (f->down)
        f->cycles++;
    int n = flap_set(f, f->down);
    events_add(&x->ev, now, f->down ? "flap_down" : "flap_up",
               "\"flap\":%ld,\"spec\":%s,\"cycle\":%lu,\"pairs\":%d", f->id,
               events_qn(f->args, f->argslen), f->cycles, n);
    if (flap_arm(f, f->down ? f->down_ms : f->up_ms) < 0) {
        log_msg(LOG_ERR, "flap %ld: out of memory for its timer: ending it", f->id);
        flap_set(f, 0);
        flap_free(c, f);
    }
    changed(c);
}

long chaos_flap(chaos *c, const char *args, size_t argslen, long long up_ms, long long down_ms,
                long long for_ms, char *err, size_t errlen)
{
    if (c->nflaps >= CHAOS_MAX_FLAPS) {
        snprintf(err, errlen, "too many flaps: at most %d", CHAOS_MAX_FLAPS);
        return -1;
    }
    flap *f = calloc(1, sizeof *f);
    if (!f || !(f->args = malloc(argslen + 1))) {
        free(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(f->args, args, argslen);
    f->args[argslen] = 0;
    f->argslen = argslen;
    f->c = c;
    f->tag = chaos_tag(c);
    f->up_ms = up_ms;
    f->down_ms = down_ms;
    f->ends_ms = for_ms ? loop_now_ms() + for_ms : 0;
    f->id = ++c->next_flap;
    f->next = c->flaps;
    if (c->flaps)
        c->flaps->prev = f;
    c->flaps = f;
    c->nflaps++;
    /* the timer first (it may fail), then the first cut: the reply finds
     * the pairs cut already */
    if (flap_arm(f, down_ms) < 0) {
        flap_free(c, f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->down = 1;
    f->cycles = 1;
    int n = flap_set(f, 1);
    events_add(&c->x->ev, loop_now_ms(), "flap_down",
               "\"flap\":%ld,\"spec\":%s,\"cycle\":1,\"pairs\":%d,\"up_ms\":%lld,"
               "\"down_ms\":%lld,\"for_ms\":%lld",
               f->id, events_qn(f->args, f->argslen), n, up_ms, down_ms, for_ms);
    changed(c);
    return f->id;
}

int chaos_flap_stop(chaos *c)
{
    int n = 0;
    while (c->flaps) {
        flap *f = c->flaps;
        int pairs = flap_set(f, 0);
        events_add(&c->x->ev, loop_now_ms(), "flap_end",
                   "\"flap\":%ld,\"spec\":%s,\"cycles\":%lu,\"pairs\":%d,\"stopped\":true", f->id,
                   events_qn(f->args, f->argslen), f->cycles, pairs);
        flap_free(c, f);
        n++;
    }
    if (n)
        changed(c);
    return n;
}

/* ---- the nemesis ----------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The registered nodes' alive names, sorted: the nemesis's node set. */
static int sorted_nodes(epx *x, const char **names)
{
    int n = 0;
    for (reg_node *r = x->reg.reg; r && n < NEMESIS_MAX_NODES; r = r->next)
        names[n++] = r->name;
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}

/* Make one partition in shape from *rng and add its pairs tagged tag; its
 * members into o (if not NULL).  0, or -1 with a message (nothing added). */
static int partition(chaos *c, nemesis_shape shape, uint64_t *rng, unsigned long tag, sbuf *o,
                     char *err, size_t errlen)
{
    static nemesis_plan plan;
    epx *x = c->x;
    const char *names[NEMESIS_MAX_NODES];
    int n = sorted_nodes(x, names);
    if (nemesis_make(shape, n, rng, &plan, err, errlen) < 0)
        return -1;
    size_t npairs = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            npairs += plan.blocked[i][j];
    if (x->rules.n + npairs > RULES_MAX) {
        snprintf(err, errlen, "too many rules: at most %d blocked pairs", RULES_MAX);
        return -1;
    }
    x->rules.tag = tag;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (plan.blocked[i][j] && rules_add(&x->rules, names[i], names[j]) < 0) {
                x->rules.tag = 0;
                rules_remove_tag(&x->rules, tag);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
    x->rules.tag = 0;
    if (o)
        nemesis_plan_json(&plan, names, o);
    return 0;
}

static uint64_t fresh_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
    return nemesis_rand(&s) % 1000000000ULL;   /* short enough to type back */
}

int chaos_nemesis_shape(chaos *c, const nemesis_cmd *cmd, unsigned long tag, sbuf *o,
                        char *err, size_t errlen)
{
    uint64_t seed = cmd->has_seed ? cmd->seed : fresh_seed(), rng = seed;
    size_t mark = o->len;
    sbuf_printf(o, "{\"seed\":%llu,", (unsigned long long)seed);
    if (partition(c, cmd->shape, &rng, tag, o, err, errlen) < 0) {
        o->len = mark;
        return -1;
    }
    sbuf_addstr(o, "}");
    events_add(&c->x->ev, loop_now_ms(), "nemesis_shape", "%.*s", (int)(o->len - mark - 2),
               o->p + mark + 1);
    changed(c);
    return 0;
}

static void nem_fired(void *ctx);

static void nem_arm(chaos *c, long long at)
{
    nemesis_run *r = &c->nem;
    if (r->ends_ms && at > r->ends_ms)
        at = r->ends_ms;
    r->timer = loop_timer_at(c->x->loop, at, nem_fired, c);
    if (!r->timer) {
        log_msg(LOG_ERR, "nemesis: out of memory for its timer: stopping");
        chaos_nemesis_stop(c);
    }
}

/* Partition (step k) or heal, whichever is due; or end. */
static void nem_fired(void *ctx)
{
    chaos *c = ctx;
    nemesis_run *r = &c->nem;
    epx *x = c->x;
    long long now = loop_now_ms();
    r->timer = NULL;
    if (r->ends_ms && now >= r->ends_ms) {
        int pairs = rules_remove_tag(&x->rules, r->tag);
        events_add(&x->ev, now, "nemesis_end", "\"steps\":%lu,\"pairs\":%d", r->step, pairs);
        r->running = 0;
        changed(c);
        return;
    }
    if (r->partitioned) {
        int pairs = rules_remove_tag(&x->rules, r->tag);
        r->partitioned = 0;
        events_add(&x->ev, now, "nemesis_heal", "\"step\":%lu,\"pairs\":%d", r->step, pairs);
        nem_arm(c, r->start_ms + (long long)r->step * r->every_ms);
        changed(c);
        return;
    }
    r->step++;
    sbuf o = { 0 };
    char err[256];
    if (partition(c, r->shape, &r->rng, r->tag, &o, err, sizeof err) < 0) {
        events_add(&x->ev, now, "nemesis_skip", "\"step\":%lu,\"reason\":%s", r->step,
                   events_q(err));
        nem_arm(c, r->start_ms + (long long)r->step * r->every_ms);
    } else {
        r->partitioned = 1;
        events_add(&x->ev, now, "nemesis_partition", "\"step\":%lu,%s", r->step, sbuf_str(&o));
        nem_arm(c, r->start_ms + (long long)(r->step - 1) * r->every_ms + r->heal_ms);
    }
    sbuf_free(&o);
    changed(c);
}

int chaos_nemesis_start(chaos *c, const nemesis_cmd *cmd, sbuf *o, char *err, size_t errlen)
{
    nemesis_run *r = &c->nem;
    if (r->running) {
        snprintf(err, errlen, "a nemesis is running already (NEMESIS STOP first)");
        return -1;
    }
    nemesis_run fresh = { 0 };
    fresh.running = 1;
    fresh.shape = cmd->shape;
    fresh.seed = fresh.rng = cmd->has_seed ? cmd->seed : fresh_seed();
    fresh.tag = chaos_tag(c);
    fresh.every_ms = cmd->every_ms;
    fresh.heal_ms = cmd->heal_ms;
    fresh.start_ms = loop_now_ms();
    fresh.ends_ms = cmd->for_ms ? fresh.start_ms + cmd->for_ms : 0;
    if (!(fresh.timer = loop_timer_at(c->x->loop, fresh.start_ms, nem_fired, c))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *r = fresh;
    char e[16], h[16];
    units_fmt_duration(r->every_ms, e, sizeof e);
    units_fmt_duration(r->heal_ms, h, sizeof h);
    sbuf_printf(o, "{\"shape\":\"%s\",\"seed\":%llu,\"every\":\"%s\",\"heal\":\"%s\",\"for_ms\":%lld}",
                nemesis_shape_name(r->shape), (unsigned long long)r->seed, e, h, cmd->for_ms);
    events_add(&c->x->ev, r->start_ms, "nemesis_start",
               "\"shape\":\"%s\",\"seed\":%llu,\"every_ms\":%lld,\"heal_ms\":%lld,\"for_ms\":%lld",
               nemesis_shape_name(r->shape), (unsigned long long)r->seed, r->every_ms, r->heal_ms,
               cmd->for_ms);
    return 0;
}

int chaos_nemesis_stop(chaos *c)
{
    nemesis_run *r = &c->nem;
    if (!r->running)
        return 0;
    loop_timer_del(c->x->loop, r->timer);
    r->timer = NULL;
    int pairs = rules_remove_tag(&c->x->rules, r->tag);
    events_add(&c->x->ev, loop_now_ms(), "nemesis_end", "\"steps\":%lu,\"pairs\":%d,\"stopped\":true",
               r->step, pairs);
    r->running = 0;
    changed(c);
    return 1;
}

void chaos_heal(chaos *c)
{
    if (!c)
        return;
    while (c->timed)
        chaos_timed_cancel(c, c->timed);
    while (c->flaps)
        flap_free(c, c->flaps);
    if (c->nem.running) {
        loop_timer_del(c->x->loop, c->nem.timer);
        c->nem.timer = NULL;
        c->nem.running = 0;
        events_add(&c->x->ev, loop_now_ms(), "nemesis_end", "\"steps\":%lu,\"healed\":true",
                   c->nem.step);
    }
}

void chaos_free(chaos *c)
{
    if (!c)
        return;
    chaos_heal(c);
    free(c);
}

void chaos_json(chaos *c, sbuf *o)
{
    long long now = loop_now_ms();
    sbuf_addstr(o, "\"timed\":[");
    for (chaos_timed *t = c->timed; t; t = t->next) {
        sbuf_addstr(o, t == c->timed ? "{\"command\":" : ",{\"command\":");
        sbuf_json_str(o, t->what, strlen(t->what));
        sbuf_printf(o, ",\"left_ms\":%lld}", t->end_ms > now ? t->end_ms - now : 0);
    }
    sbuf_addstr(o, "],\"flaps\":[");
    for (flap *f = c->flaps; f; f = f->next) {
        sbuf_printf(o, "%s{\"id\":%ld,\"spec\":", f == c->flaps ? "" : ",", f->id);
        sbuf_json_str(o, f->args, f->argslen);
        sbuf_printf(o, ",\"up_ms\":%lld,\"down_ms\":%lld,\"state\":\"%s\",\"cycles\":%lu",
                    f->up_ms, f->down_ms, f->down ? "down" : "up", f->cycles);
        if (f->ends_ms)
            sbuf_printf(o, ",\"left_ms\":%lld", f->ends_ms > now ? f->ends_ms - now : 0);
        sbuf_addstr(o, "}");
    }
    sbuf_addstr(o, "],\"nemesis\":");
    nemesis_run *r = &c->nem;
    if (!r->running) {
        sbuf_addstr(o, "null");
        return;
    }
    sbuf_printf(o, "{\"shape\":\"%s\",\"seed\":%llu,\"every_ms\":%lld,\"heal_ms\":%lld,"
                   "\"step\":%lu,\"state\":\"%s\"",
                nemesis_shape_name(r->shape), (unsigned long long)r->seed, r->every_ms,
                r->heal_ms, r->step, r->partitioned ? "partitioned" : "healed");
    if (r->ends_ms)
        sbuf_printf(o, ",\"left_ms\":%lld", r->ends_ms > now ? r->ends_ms - now : 0);
    sbuf_addstr(o, "}");
}
