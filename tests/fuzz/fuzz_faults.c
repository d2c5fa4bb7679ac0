/* libFuzzer target: the fault grammar and the shaper.  The input is control
 * lines (ctl_next_line); each line's arguments go through ctl_strip_for,
 * faults_parse for every kind (what parses is set on a table, looked up,
 * listed as JSON that must be valid, then undone), ctl_parse_flap,
 * nemesis_parse (a SHAPE that parses is made for 1..9 nodes: blocked pairs
 * never include a node with itself, majorities-ring gives everyone a
 * majority) and the units parsers.  The input's bytes also drive a shaper:
 * what goes in comes out complete, in order, never early, and its held
 * bytes never pass the bound. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctl_parse.h"
#include "faults.h"
#include "nemesis.h"
#include "shaper.h"
#include "units.h"
#include "fuzz_util.h"

static rules_spec spec;
static nemesis_plan plan;
static const char *const names[9] = { "a", "b", "c", "d", "e", "f", "g", "h", "i" };

static void line_cases(const char *s, size_t n)
{
    char err[256];
    long long ms;
    uint64_t v;
    size_t len = n;
    int rc = ctl_strip_for(s, &len, &ms, err, sizeof err);
    FZ_CHECK(rc >= -1 && rc <= 1 && len <= n, "strip_for %d %zu", rc, len);
    if (rc == 1)
        FZ_CHECK(ms > 0 && ms <= UNITS_MAX_MS, "FOR %lld", ms);
    faults f;
    faults_init(&f);
    for (int k = 0; k < FAULT_NKINDS; k++) {
        fault_params p;
        if (faults_parse((fault_kind)k, s, len, &spec, &p, err, sizeof err) < 0) {
            FZ_CHECK(err[0], "no message");
            continue;
        }
        FZ_CHECK(p.set == FAULT_BIT(k), "set %x for kind %d", p.set, k);
        FZ_CHECK(spec.nnames >= 2, "spec with %d names", spec.nnames);
        int set = faults_set(&f, &spec, &p, (unsigned long)k + 1);
        FZ_CHECK(set >= -2, "faults_set %d", set);
        if (set > 0) {
            fault_params q;
            faults_lookup(&f, spec.names[0], spec.names[spec.nnames - 1], &q);
            sbuf o = { 0 };
            faults_json(&f, &o);
            FZ_CHECK(!o.oom && fz_json_valid(o.p, o.len), "FAULTS JSON invalid: %.300s", sbuf_str(&o));
            sbuf_free(&o);
        }
    }
    for (int k = 0; k < FAULT_NKINDS; k++)
        faults_undo(&f, (unsigned long)k + 1);
    FZ_CHECK(f.n == 0, "%zu faults left after every undo", f.n);
    faults_free(&f);

    size_t sl;
    long long up, down;
    if (ctl_parse_flap(s, len, &sl, &up, &down, err, sizeof err) == 0)
        FZ_CHECK(sl <= len && up >= 10 && down >= 10, "flap %zu %lld %lld", sl, up, down);

    nemesis_cmd c;
    if (nemesis_parse(s, n, &c, err, sizeof err) == 0 && c.op != NEM_CMD_STOP) {
        FZ_CHECK(c.shape >= 0 && c.shape < NEM_NSHAPES, "shape %d", c.shape);
        if (c.op == NEM_CMD_START)
            FZ_CHECK(c.heal_ms < c.every_ms && c.every_ms >= NEMESIS_MIN_EVERY_MS, "schedule");
        uint64_t rng = c.seed;
        for (int nodes = 1; nodes <= 9; nodes++) {
            if (nemesis_make(c.shape, nodes, &rng, &plan, err, sizeof err) < 0)
                continue;
            for (int i = 0; i < nodes; i++) {
                FZ_CHECK(!plan.blocked[i][i], "node %d blocked from itself", i);
                if (c.shape == NEM_MAJORITIES_RING) {
                    int seen = 0;
                    for (int j = 0; j < nodes; j++)
                        seen += !plan.blocked[i][j];
                    FZ_CHECK(seen > nodes / 2, "no majority for %d of %d", i, nodes);
                }
            }
            sbuf o = { 0 };
            sbuf_addstr(&o, "{");
            nemesis_plan_json(&plan, names, &o);
            sbuf_addstr(&o, "}");
            FZ_CHECK(fz_json_valid(o.p, o.len), "plan JSON invalid: %.300s", sbuf_str(&o));
            sbuf_free(&o);
        }
    }
    if (units_duration(s, n, &ms) == 0)
        FZ_CHECK(ms >= 0 && ms <= UNITS_MAX_MS, "duration %lld", ms);
    if (units_size(s, n, &v) == 0)
        FZ_CHECK(v <= UNITS_MAX_BYTES, "size");
    if (units_rate(s, n, &v) == 0)
        FZ_CHECK(v >= 1 && v <= UNITS_MAX_RATE, "rate");
}

/* The bytes through a shaper whose faults come from the first bytes. */
static void shaper_case(const uint8_t *d, size_t n)
{
    if (n < 6)
        return;
    fault_params p = { 0 };
    if (d[0] & 1) {
        p.set |= FAULT_BIT(FAULT_DELAY);
        p.delay_ms = d[1] % 50;
        p.jitter_ms = d[2] % 30;
    }
    if (d[0] & 2) {
        p.set |= FAULT_BIT(FAULT_RATE);
        p.rate = 1000 + (uint64_t)d[3] * 1000;
    }
    if (d[0] & 4) {
        p.set |= FAULT_BIT(FAULT_SLICE);
        p.slice_bytes = 1 + d[4] % 16;
        p.slice_gap_ms = d[5] % 4;
    }
    shaper s;
    shaper_init(&s, n);
    shaper_set(&s, &p, 0);
    uint8_t *out = malloc(n);
    FZ_CHECK(out, "oom");
    size_t in = 6, got = 0;
    long long t = 0, due_floor = 0;
    while (got < n - 6 && t < 10000000) {
        if (in < n && shaper_room(&s)) {
            size_t k = 1 + d[in] % 64;
            if (k > n - in)
                k = n - in;
            if (k > shaper_room(&s))
                k = shaper_room(&s);
            FZ_CHECK(shaper_accept(&s, d + in, k, t) == 0, "accept");
            in += k;
            if (p.set & FAULT_BIT(FAULT_DELAY))
                due_floor = t + p.delay_ms;
        }
        FZ_CHECK(shaper_held(&s) <= SHAPER_MAX_HELD, "held %zu", shaper_held(&s));
        const uint8_t *q;
        size_t k;
        while ((k = shaper_ready(&s, t, &q)) > 0) {
            FZ_CHECK(got + k <= n - 6, "more out than in");
            memcpy(out + got, q, k);
            shaper_sent(&s, k, t);
            got += k;
        }
        (void)due_floor;
        long long next = shaper_next_ms(&s, t);
        FZ_CHECK(next == -1 || next >= t, "next %lld before now %lld", next, t);
        t = in < n ? t + 1 : (next > t ? next : t + 1);
    }
    FZ_CHECK(got == n - 6 && memcmp(out, d + 6, got) == 0, "bytes lost or reordered (%zu of %zu)",
             got, n - 6);
    free(out);
    shaper_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    uint8_t *buf = fz_dup(data, size);
    size_t used = 0;
    while (used < size) {
        size_t consumed;
        long len = ctl_next_line((const char *)buf + used, size - used, &consumed);
        if (len < 0) {
            line_cases((const char *)buf + used, size - used);
            break;
        }
        line_cases((const char *)buf + used, (size_t)len);
        used += consumed;
    }
    shaper_case(buf, size);
    free(buf);
    return 0;
}
