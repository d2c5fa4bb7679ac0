/* Unit tests of proxy/events.c: the ring of the last EVENTS_KEEP events, its
 * JSON (the EVENTS payload), the JSON-lines file, and the JSON string
 * quoting helpers.  Pure: no sockets, no processes; files only in a temp
 * directory made and removed here. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"

/* ------------------------------------------------------------------ */
/* A strict JSON checker (RFC 8259): one value, optional blanks around it. */

typedef struct jp {
    const char *s;
    size_t n, i;
    int depth;
} jp;

static void j_ws(jp *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static int j_lit(jp *p, const char *w)
{
    size_t k = strlen(w);
    if (p->n - p->i < k || memcmp(p->s + p->i, w, k) != 0)
        return 0;
    p->i += k;
    return 1;
}

static int j_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int j_string(jp *p)
{
    if (p->i >= p->n || p->s[p->i] != '"')
        return 0;
    p->i++;
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (++p->i >= p->n)
                return 0;
            char e = p->s[p->i];
            if (e == 'u') {
                if (p->n - p->i < 5)
                    return 0;
                for (int k = 1; k <= 4; k++)
                    if (!j_hex(p->s[p->i + (size_t)k]))
                        return 0;
                p->i += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0)
                return 0;
            p->i++;
            continue;
        }
        if (c >= 0x80) {
            /* well-formed UTF-8 */
            size_t k = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
            if (k == 0 || p->n - p->i < k)
                return 0;
            for (size_t m = 1; m < k; m++)
                if (((unsigned char)p->s[p->i + m] & 0xC0) != 0x80)
                    return 0;
            p->i += k;
            continue;
        }
        p->i++;
    }
    return 0;
}

static int j_number(jp *p)
{
    size_t st = p->i;
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    if (p->i >= p->n)
        return 0;
    if (p->s[p->i] == '0') {
        p->i++;
    } else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    } else {
        return 0;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        size_t d = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (p->i == d)
            return 0;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        size_t d = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (p->i == d)
            return 0;
    }
    return p->i > st;
}

static int j_value(jp *p);

static int j_object(jp *p)
{
    p->i++; /* '{' */
    j_ws(p);
    if (p->i < p->n && p->s[p->i] == '}') {
        p->i++;
        return 1;
    }
    for (;;) {
        j_ws(p);
        if (!j_string(p))
            return 0;
        j_ws(p);
        if (p->i >= p->n || p->s[p->i] != ':')
            return 0;
        p->i++;
        if (!j_value(p))
            return 0;
        j_ws(p);
        if (p->i >= p->n)
            return 0;
        if (p->s[p->i] == '}') {
            p->i++;
            return 1;
        }
        if (p->s[p->i] != ',')
            return 0;
        p->i++;
    }
}

static int j_array(jp *p)
{
    p->i++; /* '[' */
    j_ws(p);
    if (p->i < p->n && p->s[p->i] == ']') {
        p->i++;
        return 1;
    }
    for (;;) {
        if (!j_value(p))
            return 0;
        j_ws(p);
        if (p->i >= p->n)
            return 0;
        if (p->s[p->i] == ']') {
            p->i++;
            return 1;
        }
        if (p->s[p->i] != ',')
            return 0;
        p->i++;
    }
}

static int j_value(jp *p)
{
    j_ws(p);
    if (p->i >= p->n || ++p->depth > 64)
        return 0;
    int ok;
    switch (p->s[p->i]) {
    case '{': ok = j_object(p); break;
    case '[': ok = j_array(p); break;
    case '"': ok = j_string(p); break;
    case 't': ok = j_lit(p, "true"); break;
    case 'f': ok = j_lit(p, "false"); break;
    case 'n': ok = j_lit(p, "null"); break;
    default: ok = j_number(p); break;
    }
    p->depth--;
    return ok;
}

static int json_valid_n(const char *s, size_t n)
{
    jp p = { s, n, 0, 0 };
    if (!j_value(&p))
        return 0;
    j_ws(&p);
    return p.i == n;
}

static int json_valid(const char *s)
{
    return json_valid_n(s, strlen(s));
}

/* ------------------------------------------------------------------ */

/* The EVENTS payload for `after`, as a malloc'd string. */
static char *ev_json(const events *e, unsigned long long after)
{
    sbuf b = { 0 };
    events_json(e, after, &b);
    ck_assert_int_eq(b.oom, 0);
    ck_assert_ptr_nonnull(b.p);
    ck_assert_uint_eq(b.len, strlen(b.p));
    return b.p;
}

/* Check that js is a valid array of events whose seqs are first..last in
 * order (nothing when first > last). */
static void assert_seqs(const char *js, unsigned long long first, unsigned long long last)
{
    ck_assert_msg(json_valid(js), "invalid JSON: %.300s", js);
    ck_assert_msg(js[0] == '[', "not an array: %.100s", js);
    unsigned long long want = first, count = 0;
    /* "{\"seq\":" cannot occur inside a string value: its quotes would be
     * escaped there */
    for (const char *p = strstr(js, "{\"seq\":"); p; p = strstr(p + 1, "{\"seq\":")) {
        unsigned long long seq = strtoull(p + 7, NULL, 10);
        ck_assert_msg(seq == want, "seq %llu where %llu was expected", seq, want);
        want++;
        count++;
    }
    unsigned long long expect = first > last ? 0 : last - first + 1;
    ck_assert_msg(count == expect, "%llu events, expected %llu", count, expect);
    if (count == 0)
        ck_assert_str_eq(js, "[]");
}

/* ------------------------------------------------------------------ */

START_TEST(json_checker_self_test)
{
    /* the checker used below must tell valid from invalid */
    ck_assert(json_valid("[]"));
    ck_assert(json_valid("[{\"a\":1,\"b\":\"x\\\"y\\u0001\",\"c\":[true,false,null,-1.5e3]}]"));
    ck_assert(json_valid(" {} "));
    ck_assert(!json_valid("[{\"a\":1},]"));
    ck_assert(!json_valid("[{\"a\":1}"));
    ck_assert(!json_valid("{\"a\":\"b}"));
    ck_assert(!json_valid("{\"a\":\"\\u00\"}"));
    ck_assert(!json_valid("{\"a\":\"\x01\"}"));
    ck_assert(!json_valid("{\"a\":\"\xff\"}"));
    ck_assert(!json_valid("{\"a\":01}"));
    ck_assert(!json_valid("{\"a\" 1}"));
    ck_assert(!json_valid("[] []"));
    ck_assert(!json_valid(""));
}
END_TEST

START_TEST(events_seq_and_t)
{
    static events e;
    events_init(&e, 1000);
    ck_assert_uint_eq(e.next_seq, 1);
    ck_assert_ptr_null(e.file);
    char *js = ev_json(&e, 0);
    ck_assert_str_eq(js, "[]");
    free(js);

    events_add(&e, 1000, "start", "%s", "");
    events_add(&e, 1250, "registered", "\"name\":%s,\"port\":%d", events_q("n1"), 4000);
    events_add(&e, 6000, "heal", "\"removed\":%zu", (size_t)3);
    events_add(&e, 999, "early", "\"x\":true");
    ck_assert_uint_eq(e.next_seq, 5);
    js = ev_json(&e, 0);
    ck_assert_str_eq(js, "[{\"seq\":1,\"t\":0,\"type\":\"start\"},"
                         "{\"seq\":2,\"t\":250,\"type\":\"registered\",\"name\":\"n1\",\"port\":4000},"
                         "{\"seq\":3,\"t\":5000,\"type\":\"heal\",\"removed\":3},"
                         "{\"seq\":4,\"t\":-1,\"type\":\"early\",\"x\":true}]");
    ck_assert(json_valid(js));
    free(js);
    events_free(&e);

    /* t counts from the t0 given, whatever it is */
    events_init(&e, 123456789012LL);
    events_add(&e, 123456789012LL + 42, "a", "%s", "");
    js = ev_json(&e, 0);
    ck_assert_str_eq(js, "[{\"seq\":1,\"t\":42,\"type\":\"a\"}]");
    free(js);
    events_free(&e);
}
END_TEST

START_TEST(events_json_after)
{
    static events e;
    events_init(&e, 0);
    char *js = ev_json(&e, 5);
    ck_assert_str_eq(js, "[]");
    free(js);
    for (int i = 1; i <= 5; i++)
        events_add(&e, i * 10, "e", "\"i\":%d", i);

    js = ev_json(&e, 0);
    assert_seqs(js, 1, 5);
    free(js);
    js = ev_json(&e, 1);
    assert_seqs(js, 2, 5);
    ck_assert_str_eq(js, "[{\"seq\":2,\"t\":20,\"type\":\"e\",\"i\":2},"
                         "{\"seq\":3,\"t\":30,\"type\":\"e\",\"i\":3},"
                         "{\"seq\":4,\"t\":40,\"type\":\"e\",\"i\":4},"
                         "{\"seq\":5,\"t\":50,\"type\":\"e\",\"i\":5}]");
    free(js);
    js = ev_json(&e, 4);
    ck_assert_str_eq(js, "[{\"seq\":5,\"t\":50,\"type\":\"e\",\"i\":5}]");
    free(js);
    /* at or past the last: nothing */
    static const unsigned long long past[] = { 5, 6, 1000, 123456789, ULLONG_MAX - 1, ULLONG_MAX };
    for (size_t k = 0; k < sizeof past / sizeof past[0]; k++) {
        js = ev_json(&e, past[k]);
        ck_assert_msg(strcmp(js, "[]") == 0, "after=%llu gave %.200s", past[k], js);
        free(js);
    }

    /* events_json appends to what the buffer holds */
    sbuf b = { 0 };
    sbuf_addstr(&b, "OK ");
    events_json(&e, 3, &b);
    ck_assert_str_eq(b.p, "OK [{\"seq\":4,\"t\":40,\"type\":\"e\",\"i\":4},"
                          "{\"seq\":5,\"t\":50,\"type\":\"e\",\"i\":5}]");
    sbuf_free(&b);

    /* later events show up after a first read */
    events_add(&e, 60, "e", "\"i\":%d", 6);
    js = ev_json(&e, 5);
    ck_assert_str_eq(js, "[{\"seq\":6,\"t\":60,\"type\":\"e\",\"i\":6}]");
    free(js);
    events_free(&e);
}
END_TEST

/* Add `total` events, then check what is kept. */
static void ring_case(unsigned long long total)
{
    static events e;
    events_init(&e, 0);
    for (unsigned long long i = 1; i <= total; i++)
        events_add(&e, (long long)i, "link_up", "\"link\":%llu,\"from\":%s,\"to\":%s", i,
                   events_q("n1@localhost"), events_q("n\"2"));
    ck_assert_uint_eq(e.next_seq, total + 1);
    unsigned long long first = total > EVENTS_KEEP ? total - EVENTS_KEEP + 1 : 1;

    char *js = ev_json(&e, 0);
    assert_seqs(js, first, total);
    /* the kept events are whole and in order: check the first and last */
    char want[256];
    snprintf(want, sizeof want,
             "[{\"seq\":%llu,\"t\":%llu,\"type\":\"link_up\",\"link\":%llu,"
             "\"from\":\"n1@localhost\",\"to\":\"n\\\"2\"},",
             first, first, first);
    if (total > 1)
        ck_assert_msg(strncmp(js, want, strlen(want)) == 0, "starts %.200s", js);
    snprintf(want, sizeof want,
             "{\"seq\":%llu,\"t\":%llu,\"type\":\"link_up\",\"link\":%llu,"
             "\"from\":\"n1@localhost\",\"to\":\"n\\\"2\"}]",
             total, total, total);
    size_t jl = strlen(js), wl = strlen(want);
    ck_assert_msg(jl >= wl && strcmp(js + jl - wl, want) == 0, "ends %s", js + (jl > 200 ? jl - 200 : 0));
    free(js);

    /* after an old, no longer kept seq: everything kept */
    js = ev_json(&e, first > 1 ? first - 1 : 0);
    assert_seqs(js, first, total);
    free(js);
    if (first > 2) {
        js = ev_json(&e, 1);
        assert_seqs(js, first, total);
        free(js);
    }
    /* after a kept one: the rest */
    js = ev_json(&e, total - 10);
    assert_seqs(js, total - 9, total);
    free(js);
    js = ev_json(&e, first);
    assert_seqs(js, first + 1, total);
    free(js);
    js = ev_json(&e, total);
    ck_assert_str_eq(js, "[]");
    free(js);
    events_free(&e);
}

START_TEST(events_ring_wraps)
{
    static const unsigned long long totals[] = {
        20, EVENTS_KEEP - 1, EVENTS_KEEP, EVENTS_KEEP + 1, 2 * EVENTS_KEEP,
        2 * EVENTS_KEEP + 1, 2500,
    };
    ck_assert_int_eq(EVENTS_KEEP, 1000);
    for (size_t k = 0; k < sizeof totals / sizeof totals[0]; k++)
        ring_case(totals[k]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* the events file, in a temp dir made by an unchecked fixture (it runs in
 * the runner's process, so the teardown happens even when a test fails) */

static char tmpdir[64];

static void tmpdir_setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_events.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        tmpdir[0] = 0;
    }
}

static void tmpdir_teardown(void)
{
    if (!tmpdir[0])
        return;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *de;
        char path[512];
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

START_TEST(events_file_lines)
{
    ck_assert_msg(tmpdir[0] != 0, "no temp dir");
    char path[256];
    snprintf(path, sizeof path, "%s/events.jsonl", tmpdir);
    /* it appends: what is there stays */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("old line\n", f);
    fclose(f);

    static events e;
    events_init(&e, 100);
    ck_assert_int_eq(events_open_file(&e, path), 0);
    ck_assert_ptr_nonnull(e.file);
    events_add(&e, 100, "registered", "\"name\":%s,\"port\":%d", events_q("n1"), 5000);
    events_add(&e, 150, "cut", "\"spec\":%s,\"pairs\":%d", events_qn("n1 n2\"x", 7), 2);
    events_add(&e, 175, "heal", "%s", "");

    /* each event is in the file as soon as it is added */
    size_t len;
    char *txt = read_file(path, &len);
    const char *want = "old line\n"
                       "{\"seq\":1,\"t\":0,\"type\":\"registered\",\"name\":\"n1\",\"port\":5000}\n"
                       "{\"seq\":2,\"t\":50,\"type\":\"cut\",\"spec\":\"n1 n2\\\"x\",\"pairs\":2}\n"
                       "{\"seq\":3,\"t\":75,\"type\":\"heal\"}\n";
    ck_assert_str_eq(txt, want);
    ck_assert_uint_eq(len, strlen(want));
    free(txt);
    /* the lines are the same objects as the EVENTS payload */
    char *js = ev_json(&e, 0);
    ck_assert_str_eq(js, "[{\"seq\":1,\"t\":0,\"type\":\"registered\",\"name\":\"n1\",\"port\":5000},"
                         "{\"seq\":2,\"t\":50,\"type\":\"cut\",\"spec\":\"n1 n2\\\"x\",\"pairs\":2},"
                         "{\"seq\":3,\"t\":75,\"type\":\"heal\"}]");
    free(js);

    /* the file keeps every event, not only the last EVENTS_KEEP */
    for (int i = 4; i <= EVENTS_KEEP + 200; i++)
        events_add(&e, 200 + i, "link_opened", "\"link\":%d,\"from\":%s,\"to\":%s", i,
                   events_q("a@h"), events_q("b\n@h"));
    events_free(&e);
    ck_assert_ptr_null(e.file);

    txt = read_file(path, &len);
    ck_assert_uint_gt(len, 0);
    ck_assert_int_eq(txt[len - 1], '\n');
    int lines = 0;
    unsigned long long seq = 0;
    for (char *line = txt, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = 0;
        lines++;
        if (lines == 1) {
            ck_assert_str_eq(line, "old line");
            continue;
        }
        ck_assert_msg(json_valid(line), "line %d is not JSON: %s", lines, line);
        ck_assert_msg(strncmp(line, "{\"seq\":", 7) == 0, "line %d: %s", lines, line);
        unsigned long long s = strtoull(line + 7, NULL, 10);
        ck_assert_uint_eq(s, seq + 1);
        seq = s;
    }
    ck_assert_int_eq(lines, 1 + EVENTS_KEEP + 200);
    free(txt);

    /* a second log on the same file appends after the first */
    events_init(&e, 0);
    ck_assert_int_eq(events_open_file(&e, path), 0);
    events_add(&e, 7, "again", "\"k\":%s", events_q("v"));
    events_free(&e);
    txt = read_file(path, &len);
    const char *tail = "{\"seq\":1,\"t\":7,\"type\":\"again\",\"k\":\"v\"}\n";
    ck_assert_uint_gt(len, strlen(tail));
    ck_assert_str_eq(txt + len - strlen(tail), tail);
    ck_assert_int_eq(txt[len - strlen(tail) - 1], '\n');
    free(txt);
}
END_TEST

START_TEST(events_file_error)
{
    ck_assert_msg(tmpdir[0] != 0, "no temp dir");
    char path[256];
    snprintf(path, sizeof path, "%s/no/such/dir/events.jsonl", tmpdir);
    static events e;
    events_init(&e, 0);
    errno = 0;
    ck_assert_int_eq(events_open_file(&e, path), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_null(e.file);
    /* the log still works without a file */
    events_add(&e, 1, "x", "%s", "");
    char *js = ev_json(&e, 0);
    ck_assert_str_eq(js, "[{\"seq\":1,\"t\":1,\"type\":\"x\"}]");
    free(js);
    events_free(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* events_q / events_qn */

START_TEST(events_q_escapes)
{
    static const struct { const char *in, *out; } T[] = {
        { "", "\"\"" },
        { "n1@localhost", "\"n1@localhost\"" },
        { "a\"b", "\"a\\\"b\"" },
        { "a\\b", "\"a\\\\b\"" },
        { "\"\\\"", "\"\\\"\\\\\\\"\"" },
        { "\001\n\t\r\037\177", "\"\\u0001\\u000a\\u0009\\u000d\\u001f\\u007f\"" },
        { "x\x1b[0m", "\"x\\u001b[0m\"" },
        { "n\xc3\xb6" "de", "\"n\xc3\xb6" "de\"" },         /* UTF-8 kept */
        { "\xe2\x82\xac", "\"\xe2\x82\xac\"" },
        { "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"" },
        { "x\xff" "y", "\"x\\udcffy\"" },                    /* not UTF-8: escaped */
        { "\xc3", "\"\\udcc3\"" },                          /* truncated sequence */
        { "/<>&'", "\"/<>&'\"" },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        const char *q = events_q(T[i].in);
        ck_assert_msg(strcmp(q, T[i].out) == 0, "events_q case %zu gave %s, expected %s", i, q,
                      T[i].out);
        ck_assert_msg(json_valid(q), "events_q case %zu: invalid JSON %s", i, q);
    }

    /* several results can be used in one call (rotating buffers) */
    const char *a = events_q("a"), *b = events_q("b\""), *c = events_q("c\\");
    ck_assert_str_eq(a, "\"a\"");
    ck_assert_str_eq(b, "\"b\\\"\"");
    ck_assert_str_eq(c, "\"c\\\\\"");
    static events e;
    events_init(&e, 0);
    events_add(&e, 0, "t", "\"a\":%s,\"b\":%s,\"c\":%s,\"d\":%s", events_q("1"), events_q("2"),
               events_q("3"), events_qn("4xx", 1));
    char *js = ev_json(&e, 0);
    ck_assert_str_eq(js, "[{\"seq\":1,\"t\":0,\"type\":\"t\",\"a\":\"1\",\"b\":\"2\",\"c\":\"3\","
                         "\"d\":\"4\"}]");
    free(js);
    events_free(&e);
}
END_TEST

START_TEST(events_qn_length)
{
    ck_assert_str_eq(events_qn("abcdef", 3), "\"abc\"");
    ck_assert_str_eq(events_qn("abcdef", 0), "\"\"");
    ck_assert_str_eq(events_qn("abcdef", 6), "\"abcdef\"");
    /* NUL bytes inside the length are data */
    ck_assert_str_eq(events_qn("a\0b", 3), "\"a\\u0000b\"");
    ck_assert_str_eq(events_qn("\0", 1), "\"\\u0000\"");
    /* a multi-byte character cut by the length is escaped byte by byte */
    ck_assert_str_eq(events_qn("n\xc3\xb6", 2), "\"n\\udcc3\"");
    ck_assert_str_eq(events_qn("q\"r", 2), "\"q\\\"\"");

    /* long input: valid JSON, a prefix of the input (it may be cut) */
    static char big[5000];
    memset(big, 'x', sizeof big);
    const char *q = events_qn(big, sizeof big);
    size_t ql = strlen(q);
    ck_assert(json_valid(q));
    ck_assert_uint_ge(ql, 2 + 512);
    ck_assert_int_eq(q[0], '"');
    ck_assert_int_eq(q[ql - 1], '"');
    ck_assert(memcmp(q + 1, big, ql - 2) == 0);
}
END_TEST

/* Inputs that grow when escaped (control bytes: 6 bytes each; bytes that
 * are not UTF-8: 6 bytes each) still give a complete JSON string. */
START_TEST(events_qn_long_escaped)
{
    static char buf[3000];
    static const unsigned char fill[] = { 0x01, 0xff, '"', '\\', 0x7f };
    for (size_t f = 0; f < sizeof fill; f++) {
        static const size_t lens[] = { 300, 400, 1023, 1024, 1025, 3000 };
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            memset(buf, fill[f], lens[k]);
            const char *q = events_qn(buf, lens[k]);
            ck_assert_msg(json_valid(q), "events_qn(%zu x 0x%02x) is not valid JSON: ...%s",
                          lens[k], fill[f], q + (strlen(q) > 40 ? strlen(q) - 40 : 0));
        }
    }
    /* and a mixture, through events_q */
    for (size_t i = 0; i < 2000; i++)
        buf[i] = (char)(i % 3 == 0 ? 0x05 : i % 3 == 1 ? (char)0xfe : 'a');
    buf[2000] = 0;
    ck_assert(json_valid(events_q(buf)));
}
END_TEST

/* Undo sbuf_json_str: the JSON escapes it writes, with \udc80..\udcff as
 * the raw byte.  The decoded length, or -1 for anything else. */
static long unquote(const char *q, unsigned char *out, size_t cap)
{
    size_t n = strlen(q), o = 0;
    if (n < 2 || q[0] != '"' || q[n - 1] != '"')
        return -1;
    for (size_t i = 1; i + 1 < n && o < cap;) {
        if (q[i] != '\\') {
            out[o++] = (unsigned char)q[i++];
        } else if (q[i + 1] == '"' || q[i + 1] == '\\') {
            out[o++] = (unsigned char)q[i + 1];
            i += 2;
        } else if (q[i + 1] == 'u' && i + 6 < n) {
            unsigned v;
            if (sscanf(q + i + 2, "%4x", &v) != 1 || (v >= 0x100 && (v < 0xdc80 || v > 0xdcff)))
                return -1;
            out[o++] = (unsigned char)(v & 0xff);
            i += 6;
        } else {
            return -1;
        }
    }
    return (long)o;
}

/* A byte that is not UTF-8 and a character that is must never come out the
 * same (0xFF was once \u00ff, which is also what U+00FF, "\xc3\xbf",
 * means); both must come back exactly. */
START_TEST(json_bad_utf8_distinct)
{
    static const struct { const char *in, *out; } T[] = {
        { "\xff", "\"\\udcff\"" },                   /* a raw byte */
        { "\xc3\xbf", "\"\xc3\xbf\"" },                 /* U+00FF, valid: kept */
        { "\\u00ff", "\"\\\\u00ff\"" },               /* the text \u00ff */
        { "\\udcff", "\"\\\\udcff\"" },               /* the text \udcff */
        { "\xed\xb3\xbf", "\"\\udced\\udcb3\\udcbf\"" }, /* U+DCFF as UTF-8: invalid */
        { "\x80", "\"\\udc80\"" },
        { "a\xc3(", "\"a\\udcc3(\"" },                 /* bad continuation */
    };
    char *seen[sizeof T / sizeof T[0]];
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        sbuf b = { 0 };
        sbuf_json_str(&b, T[i].in, strlen(T[i].in));
        ck_assert_msg(strcmp(sbuf_str(&b), T[i].out) == 0, "case %zu gave %s, want %s", i,
                      sbuf_str(&b), T[i].out);
        ck_assert_msg(json_valid(sbuf_str(&b)), "case %zu: invalid JSON %s", i, sbuf_str(&b));
        unsigned char dec[64];
        long dl = unquote(sbuf_str(&b), dec, sizeof dec);
        ck_assert_msg(dl == (long)strlen(T[i].in) && !memcmp(dec, T[i].in, (size_t)dl),
                      "case %zu does not come back", i);
        seen[i] = strdup(sbuf_str(&b));
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(strcmp(seen[k], seen[i]) != 0, "cases %zu and %zu quote alike", k, i);
        sbuf_free(&b);
    }
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        free(seen[i]);
}
END_TEST

/* Events whose members are long still come out whole and valid, in the
 * ring and in the file (names of up to 1023 bytes come from handshakes). */
START_TEST(events_long_members)
{
    ck_assert_msg(tmpdir[0] != 0, "no temp dir");
    char path[256];
    snprintf(path, sizeof path, "%s/long.jsonl", tmpdir);
    static char n1[1001], n2[1001], why[501];
    memset(n1, 'a', 1000);
    memset(n2, 'b', 1000);
    memset(why, 'c', 500);
    static events e;
    events_init(&e, 0);
    ck_assert_int_eq(events_open_file(&e, path), 0);
    events_add(&e, 5, "link_closed", "\"link\":%lu,\"from\":%s,\"to\":%s,\"by\":\"%s\",\"reason\":%s",
               7UL, events_q(n1), events_q(n2), "peer", events_q(why));
    char *js = ev_json(&e, 0);
    ck_assert_msg(json_valid(js), "invalid JSON (%zu bytes), ends ...%s", strlen(js),
                  js + (strlen(js) > 60 ? strlen(js) - 60 : 0));
    static char want[4096];
    snprintf(want, sizeof want,
             "[{\"seq\":1,\"t\":5,\"type\":\"link_closed\",\"link\":7,\"from\":\"%s\",\"to\":\"%s\","
             "\"by\":\"peer\",\"reason\":\"%s\"}]",
             n1, n2, why);
    ck_assert_msg(strcmp(js, want) == 0, "event cut or changed (%zu bytes, expected %zu)",
                  strlen(js), strlen(want));
    free(js);
    events_free(&e);

    size_t len;
    char *txt = read_file(path, &len);
    ck_assert_uint_gt(len, 1);
    ck_assert_int_eq(txt[len - 1], '\n');
    ck_assert(json_valid_n(txt, len - 1));
    free(txt);
}
END_TEST

Suite *events_suite(void)
{
    Suite *s = suite_create("events");
    struct { const TTest *t; int files; } cases[] = {
        { json_checker_self_test, 0 }, { events_seq_and_t, 0 },     { events_json_after, 0 },
        { events_ring_wraps, 0 },      { events_file_lines, 1 },    { events_file_error, 1 },
        { events_q_escapes, 0 },       { events_qn_length, 0 },     { events_qn_long_escaped, 0 },
        { events_long_members, 1 },    { json_bad_utf8_distinct, 0 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TCase *tc = tcase_create(cases[k].t->name);
        tcase_set_timeout(tc, 30);
        if (cases[k].files)
            tcase_add_unchecked_fixture(tc, tmpdir_setup, tmpdir_teardown);
        tcase_add_test(tc, cases[k].t);
        suite_add_tcase(s, tc);
    }
    return s;
}
