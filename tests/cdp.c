#include "cdp.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define JSMN_STATIC
#include <jsmn.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 2, 3)))
static int fail(cdp *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

const char *cdp_browser(void)
{
    const char *e = getenv("EPX_CHROMIUM");
    if (e && *e)
        return access(e, X_OK) == 0 ? e : NULL;
    /* the binary itself, not Debian's wrapper script: fewer processes between */
    static const char *paths[] = { "/usr/lib/chromium/chromium", "/usr/bin/chromium",
                                   "/usr/bin/chromium-browser" };
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++)
        if (access(paths[k], X_OK) == 0)
            return paths[k];
    return NULL;
}

/* ---- messages ---- */

static int send_msg(cdp *c, const char *method, const char *params, int in_session)
{
    char *m = NULL;
    size_t ml = 0;
    FILE *f = open_memstream(&m, &ml);
    if (!f)
        return -1;
    int id = ++c->id;
    fprintf(f, "{\"id\":%d,\"method\":\"%s\",\"params\":%s", id, method, params ? params : "{}");
    if (in_session)
        fprintf(f, ",\"sessionId\":\"%s\"", c->session);
    fputc('}', f);
    fputc(0, f);
    fclose(f);
    size_t off = 0;
    while (off < ml) {
        ssize_t n = write(c->to, m + off, ml - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(m);
            return fail(c, "writing to the browser: %s", strerror(errno));
        }
        off += (size_t)n;
    }
    free(m);
    return id;
}

typedef struct jdoc {
    const char *s;
    jsmntok_t *t;
    int n;
} jdoc;

static int jdoc_parse(jdoc *d, const char *s, size_t len)
{
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, s, len, NULL, 0);
    if (n <= 0)
        return -1;
    d->t = calloc((size_t)n, sizeof *d->t);
    jsmn_init(&p);
    if (!d->t || jsmn_parse(&p, s, len, d->t, (unsigned)n) != n) {
        free(d->t);
        return -1;
    }
    d->s = s;
    d->n = n;
    return 0;
}

static int jskip(const jdoc *d, int i)
{
    int end = d->t[i].end;
    for (i++; i < d->n && d->t[i].start < end; i++) {}
    return i;
}

/* The value token of key in the object at token obj, or -1. */
static int jkey(const jdoc *d, int obj, const char *key)
{
    if (obj < 0 || obj >= d->n || d->t[obj].type != JSMN_OBJECT)
        return -1;
    size_t kl = strlen(key);
    int k = obj + 1;
    for (int m = 0; m < d->t[obj].size && k + 1 < d->n; m++) {
        const jsmntok_t *t = &d->t[k];
        if ((size_t)(t->end - t->start) == kl && !memcmp(d->s + t->start, key, kl))
            return k + 1;
        k = jskip(d, k + 1);
    }
    return -1;
}

static int jint(const jdoc *d, int i)
{
    return i < 0 ? -1 : atoi(d->s + d->t[i].start);
}

/* A JSON string token's text, escapes resolved (\u above ASCII as '?'). */
static void jstr(const jdoc *d, int i, char *out, size_t cap)
{
    size_t o = 0;
    const char *s = d->s + d->t[i].start;
    int n = d->t[i].end - d->t[i].start;
    for (int k = 0; k < n && o + 1 < cap; k++) {
        if (s[k] != '\\' || k + 1 >= n) {
            out[o++] = s[k];
            continue;
        }
        char e = s[++k];
        if (e == 'u' && k + 4 < n) {
            unsigned v = (unsigned)strtoul((char[5]){ s[k + 1], s[k + 2], s[k + 3], s[k + 4], 0 },
                                           NULL, 16);
            out[o++] = v < 0x80 ? (char)v : '?';
            k += 4;
        } else {
            out[o++] = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        }
    }
    out[o] = 0;
}

/* Wait for the reply to command id; it is parsed into *d (d->s is a heap
 * copy: free d->s and d->t after).  0, or -1. */
static int wait_reply(cdp *c, int id, jdoc *d, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        char *z;
        while (c->len && (z = memchr(c->buf, 0, c->len)) != NULL) {
            size_t ml = (size_t)(z - c->buf);
            char *m = malloc(ml + 1);
            if (!m)
                return fail(c, "out of memory");
            memcpy(m, c->buf, ml + 1);
            memmove(c->buf, z + 1, c->len - ml - 1);
            c->len -= ml + 1;
            if (jdoc_parse(d, m, ml) == 0) {
                if (jint(d, jkey(d, 0, "id")) == id)
                    return 0;
                free(d->t);
            }
            free(m);
        }
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return fail(c, "no reply from the browser to command %d", id);
        struct pollfd p = { c->from, POLLIN, 0 };
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap ? c->cap * 2 : 1 << 20;
            char *nb = realloc(c->buf, cap);
            if (!nb)
                return fail(c, "out of memory");
            c->buf = nb;
            c->cap = cap;
        }
        ssize_t n = read(c->from, c->buf + c->len, c->cap - c->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(c, "the browser closed its pipe (exited?)");
        c->len += (size_t)n;
    }
}

static void jdoc_free(jdoc *d)
{
    free((char *)d->s);
    free(d->t);
    memset(d, 0, sizeof *d);
}

/* Run a command and check it did not fail; the reply in *d. */
static int command(cdp *c, const char *method, const char *params, int in_session, jdoc *d,
                   int timeout_ms)
{
    int id = send_msg(c, method, params, in_session);
    if (id < 0 || wait_reply(c, id, d, timeout_ms) < 0)
        return -1;
    int e = jkey(d, 0, "error");
    if (e >= 0) {
        fail(c, "%s: %.*s", method, d->t[e].end - d->t[e].start, d->s + d->t[e].start);
        jdoc_free(d);
        return -1;
    }
    return 0;
}

/* ---- the browser ---- */

int cdp_start(cdp *c, const char *url, int width, int height, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    c->pid = -1;
    c->to = c->from = -1;
    const char *bin = cdp_browser();
    if (!bin)
        return fail(c, "no chromium found (set EPX_CHROMIUM)");
    snprintf(c->profile, sizeof c->profile, "/tmp/epx-chromium.XXXXXX");
    if (!mkdtemp(c->profile)) {
        c->profile[0] = 0;
        return fail(c, "mkdtemp: %s", strerror(errno));
    }
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) < 0)
        return fail(c, "pipe: %s", strerror(errno));
    if (pipe2(from, O_CLOEXEC) < 0) {
        close(to[0]), close(to[1]);
        return fail(c, "pipe: %s", strerror(errno));
    }
    char prof[200], size[64];
    snprintf(prof, sizeof prof, "--user-data-dir=%s", c->profile);
    snprintf(size, sizeof size, "--window-size=%d,%d", width, height);
    const char *argv[] = { bin, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
                           "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                           "--disable-extensions", "--disable-background-networking",
                           "--hide-scrollbars", "--force-device-scale-factor=1",
                           "--disable-dev-shm-usage", prof, size, url, NULL };
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return fail(c, "fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        /* fd 3: commands in, fd 4: replies out (dup2 clears close-on-exec) */
        int a = fcntl(to[0], F_DUPFD_CLOEXEC, 10), b = fcntl(from[1], F_DUPFD_CLOEXEC, 10);
        dup2(a, 3);
        dup2(b, 4);
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        close_range(5, ~0U, 0);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    close(to[0]);
    close(from[1]);
    c->pid = pid;
    c->to = to[1];
    c->from = from[0];

    /* the page the browser opened on url, then a session on it */
    long long deadline = now_ms() + timeout_ms;
    char target[128] = "";
    while (!target[0]) {
        jdoc d;
        if (command(c, "Target.getTargets", NULL, 0, &d, (int)(deadline - now_ms())) < 0) {
            cdp_stop(c);
            return -1;
        }
        int infos = jkey(&d, jkey(&d, 0, "result"), "targetInfos");
        for (int m = 0, k = infos + 1; infos >= 0 && m < d.t[infos].size; m++, k = jskip(&d, k)) {
            int ty = jkey(&d, k, "type"), id = jkey(&d, k, "targetId");
            if (ty >= 0 && id >= 0 && d.t[ty].end - d.t[ty].start == 4 &&
                !memcmp(d.s + d.t[ty].start, "page", 4))
                jstr(&d, id, target, sizeof target);
        }
        jdoc_free(&d);
        if (!target[0]) {
            if (now_ms() > deadline) {
                cdp_stop(c);
                return fail(c, "the browser opened no page");
            }
            struct timespec ts = { 0, 50 * 1000000L };
            nanosleep(&ts, NULL);   /* the page target appears shortly after start */
        }
    }
    char params[256];
    snprintf(params, sizeof params, "{\"targetId\":\"%s\",\"flatten\":true}", target);
    jdoc d;
    if (command(c, "Target.attachToTarget", params, 0, &d, (int)(deadline - now_ms())) < 0) {
        cdp_stop(c);
        return -1;
    }
    int sid = jkey(&d, jkey(&d, 0, "result"), "sessionId");
    if (sid >= 0)
        jstr(&d, sid, c->session, sizeof c->session);
    jdoc_free(&d);
    if (!c->session[0]) {
        cdp_stop(c);
        return fail(c, "no session id from Target.attachToTarget");
    }
    return 0;
}

/* s as a JSON string literal into f. */
static void json_quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

int cdp_eval(cdp *c, const char *expr, char *out, size_t outlen, int timeout_ms)
{
    char *params = NULL;
    size_t pl = 0;
    FILE *f = open_memstream(&params, &pl);
    if (!f)
        return fail(c, "out of memory");
    char *wrapped = NULL;
    if (asprintf(&wrapped, "String((() => { try { return (%s); } catch (e) { return 'ERROR: ' + e; } })())",
                 expr) < 0) {
        fclose(f);
        free(params);
        return fail(c, "out of memory");
    }
    fputs("{\"expression\":", f);
    json_quote(f, wrapped);
    fputs(",\"returnByValue\":true}", f);
    fclose(f);
    free(wrapped);
    jdoc d;
    int rc = command(c, "Runtime.evaluate", params, 1, &d, timeout_ms);
    free(params);
    if (rc < 0)
        return -1;
    int v = jkey(&d, jkey(&d, jkey(&d, 0, "result"), "result"), "value");
    if (v < 0) {
        jdoc_free(&d);
        return fail(c, "Runtime.evaluate gave no value");
    }
    jstr(&d, v, out, outlen);
    jdoc_free(&d);
    return 0;
}

static int b64(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

int cdp_screenshot(cdp *c, const char *path, int timeout_ms)
{
    jdoc d;
    if (command(c, "Page.captureScreenshot", "{\"format\":\"png\"}", 1, &d, timeout_ms) < 0)
        return -1;
    int v = jkey(&d, jkey(&d, 0, "result"), "data");
    if (v < 0) {
        jdoc_free(&d);
        return fail(c, "Page.captureScreenshot gave no data");
    }
    const char *s = d.s + d.t[v].start;
    size_t n = (size_t)(d.t[v].end - d.t[v].start);
    unsigned char *png = malloc(n);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; png && i < n; i++) {
        int x = b64(s[i]);
        if (x < 0)
            continue;   /* '=' padding */
        acc = acc << 6 | (unsigned)x;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            png[o++] = (unsigned char)(acc >> bits);
        }
    }
    jdoc_free(&d);
    FILE *f = png ? fopen(path, "wb") : NULL;
    int ok = f && fwrite(png, 1, o, f) == o;
    if (f && fclose(f) != 0)
        ok = 0;
    free(png);
    if (!ok || o < 8)
        return fail(c, "could not write %s", path);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void cdp_stop(cdp *c)
{
    if (c->pid > 0) {
        jdoc d;
        if (c->to >= 0 && command(c, "Browser.close", NULL, 0, &d, 3000) == 0)
            jdoc_free(&d);
        long long deadline = now_ms() + 5000;
        int reaped = 0;
        while (!reaped && now_ms() < deadline) {
            pid_t r = waitpid(c->pid, NULL, WNOHANG);
            if (r == c->pid || r < 0)
                reaped = 1;
            else {
                struct timespec ts = { 0, 20 * 1000000L };
                nanosleep(&ts, NULL);
            }
        }
        kill(-c->pid, SIGKILL);   /* its group: renderers, zygotes, whatever is left */
        if (!reaped)
            waitpid(c->pid, NULL, 0);
        c->pid = -1;
    }
    if (c->to >= 0)
        close(c->to);
    if (c->from >= 0)
        close(c->from);
    c->to = c->from = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    if (c->profile[0])
        nftw(c->profile, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    c->profile[0] = 0;
}
