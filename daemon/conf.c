/*
 * conf: nginx.conf syntax (see conf.h).
 *
 * The tokenizer follows ngx_conf_read_token() of nginx 1.22 where it
 * matters for a file nginx accepts:
 *
 *   - a word starts at a non-blank; a quote there opens a quoted word
 *     that ends at the matching unescaped quote, which must be followed by
 *     a blank, ";" or "{";
 *   - an unquoted word ends at a blank, ";" or "{" ("}" and "#" inside a
 *     word are part of it; "${" opens a variable whose "{" is kept);
 *   - a backslash makes the next character plain; when the word is
 *     copied, \" \' \\ become the character and \t \r \n the control,
 *     any other backslash stays;
 *   - "#" at the start of a word comments out the rest of the line.
 *
 * Every file is balanced on its own: a "}" with no open block in that
 * file, or the end of a file inside a block, is an error, as in nginx.
 * Include loops end at CONF_MAX_DEPTH.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

typedef struct {
    conf_t      *c;
    const char  *p, *end;
    const char  *file;
    unsigned     line;
} conf_reader_t;

static int conf_block(conf_reader_t *r, const char *context, int nested);


static void
conf_error(conf_reader_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
conf_error(conf_reader_t *r, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(r->c->err, sizeof(r->c->err), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t) n < sizeof(r->c->err)) {
        snprintf(r->c->err + n, sizeof(r->c->err) - (size_t) n,
                 " in %s:%u", r->file, r->line);
    }
}


/* Keep p to be freed by conf_free; p, or NULL (and p freed) on failure. */
static void *
conf_own(conf_t *c, void *p)
{
    void  **o;

    if (p == NULL) {
        return NULL;
    }
    if (c->nowned == c->capowned) {
        o = realloc(c->owned, (c->capowned ? c->capowned * 2 : 64)
                              * sizeof(void *));
        if (o == NULL) {
            free(p);
            return NULL;
        }
        c->owned = o;
        c->capowned = c->capowned ? c->capowned * 2 : 64;
    }
    c->owned[c->nowned++] = p;
    return p;
}


void *
conf_keep(conf_t *c, void *p)
{
    return conf_own(c, p);
}


static char *
conf_strndup(conf_t *c, const char *s, size_t n)
{
    return conf_own(c, strndup(s, n));
}


int
conf_init(conf_t *c, const char *prefix)
{
    memset(c, 0, sizeof(*c));
    c->prefix = conf_strndup(c, prefix ? prefix : "",
                             prefix ? strlen(prefix) : 0);
    return c->prefix == NULL ? -1 : 0;
}


void
conf_free(conf_t *c)
{
    size_t  i;

    for (i = 0; i < c->nowned; i++) {
        free(c->owned[i]);
    }
    free(c->owned);
    free(c->d);
    memset(c, 0, sizeof(*c));
}


const char *
conf_full_name(conf_t *c, const char *path)
{
    char  *s;

    if (path[0] == '/') {
        return path;
    }
    if (asprintf(&s, "%s%s", c->prefix, path) < 0) {
        return NULL;
    }
    return conf_own(c, s);
}


/* The word in [start, stop) with nginx's escapes applied; owned by c. */
static char *
conf_word(conf_t *c, const char *start, const char *stop)
{
    char        *w, *d;
    const char  *s;

    w = malloc((size_t) (stop - start) + 1);
    if (w == NULL) {
        return NULL;
    }
    for (d = w, s = start; s < stop; ) {
        if (*s == '\\' && s + 1 < stop) {
            switch (s[1]) {
            case '"': case '\'': case '\\':
                s++;
                break;
            case 't': *d++ = '\t'; s += 2; continue;
            case 'r': *d++ = '\r'; s += 2; continue;
            case 'n': *d++ = '\n'; s += 2; continue;
            }
        }
        *d++ = *s++;
    }
    *d = '\0';
    return conf_own(c, w);
}


/*
 * The next directive's words: returns ';' (a directive), '{' (a block
 * opens after the words), '}' (a block closes, no words), 0 (end of the
 * text, no words), or -1 (error reported).  *line is the line of the
 * first word.
 */
static int
conf_token(conf_reader_t *r, char **words, size_t *nwords, unsigned *line)
{
    const char  *start;
    char         ch, q;
    int          variable;

    *nwords = 0;
    for ( ;; ) {
        /* between words */
        while (r->p < r->end
               && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r'
                   || *r->p == '\n'))
        {
            if (*r->p == '\n') {
                r->line++;
            }
            r->p++;
        }
        if (r->p == r->end) {
            if (*nwords > 0) {
                conf_error(r, "unexpected end of file, expecting \";\" or"
                           " \"}\"");
                return -1;
            }
            return 0;
        }

        ch = *r->p;
        if (ch == '#') {
            while (r->p < r->end && *r->p != '\n') {
                r->p++;
            }
            continue;
        }
        if (ch == ';' || ch == '{') {
            if (*nwords == 0) {
                conf_error(r, "unexpected \"%c\"", ch);
                return -1;
            }
            r->p++;
            return ch;
        }
        if (ch == '}') {
            if (*nwords > 0) {
                conf_error(r, "unexpected \"}\"");
                return -1;
            }
            r->p++;
            return '}';
        }
        if (*nwords == CONF_MAX_ARGS) {
            conf_error(r, "too many words in one directive (%d at most)",
                       CONF_MAX_ARGS);
            return -1;
        }
        if (*nwords == 0) {
            *line = r->line;
        }

        if (ch == '"' || ch == '\'') {
            q = ch;
            start = ++r->p;
            while (r->p < r->end && *r->p != q) {
                if (*r->p == '\\' && r->p + 1 < r->end) {
                    r->p++;
                }
                if (*r->p == '\n') {
                    r->line++;
                }
                r->p++;
            }
            if (r->p == r->end) {
                conf_error(r, "unexpected end of file, expecting %c", q);
                return -1;
            }
            words[*nwords] = conf_word(r->c, start, r->p);
            r->p++;
            if (r->p < r->end && *r->p != ' ' && *r->p != '\t'
                && *r->p != '\r' && *r->p != '\n' && *r->p != ';'
                && *r->p != '{')
            {
                if (*r->p > 0x20 && *r->p < 0x7f) {
                    conf_error(r, "unexpected \"%c\"", *r->p);
                } else {
                    conf_error(r, "unexpected byte 0x%02x",
                               (unsigned char) *r->p);
                }
                return -1;
            }
        } else {
            start = r->p;
            variable = 0;
            while (r->p < r->end) {
                ch = *r->p;
                if (ch == '{' && variable) {
                    variable = 0;
                    r->p++;
                    continue;
                }
                variable = 0;
                if (ch == '\\' && r->p + 1 < r->end) {
                    if (r->p[1] == '\n') {
                        r->line++;
                    }
                    r->p += 2;
                    continue;
                }
                if (ch == '$') {
                    variable = 1;
                    r->p++;
                    continue;
                }
                if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'
                    || ch == ';' || ch == '{')
                {
                    break;
                }
                r->p++;
            }
            words[*nwords] = conf_word(r->c, start, r->p);
        }
        if (words[*nwords] == NULL) {
            conf_error(r, "out of memory");
            return -1;
        }
        (*nwords)++;
    }
}


static int
conf_add(conf_reader_t *r, char **words, size_t n, const char *context,
    unsigned line)
{
    conf_t            *c = r->c;
    conf_directive_t  *d;
    const char       **args = NULL;

    if (c->n == c->cap) {
        d = realloc(c->d, (c->cap ? c->cap * 2 : 64) * sizeof(*d));
        if (d == NULL) {
            conf_error(r, "out of memory");
            return -1;
        }
        c->d = d;
        c->cap = c->cap ? c->cap * 2 : 64;
    }
    if (n > 1) {
        args = conf_own(c, malloc((n - 1) * sizeof(char *)));
        if (args == NULL) {
            conf_error(r, "out of memory");
            return -1;
        }
        memcpy(args, words + 1, (n - 1) * sizeof(char *));
    }
    d = &c->d[c->n++];
    d->name = words[0];
    d->args = args;
    d->nargs = n - 1;
    d->context = context;
    d->file = r->file;
    d->line = line;
    return 0;
}


static int
conf_load_file(conf_t *c, const char *path, const char *context,
    conf_reader_t *from);


/* include PATTERN: every file it names, in place, in this context. */
static int
conf_include(conf_reader_t *r, const char *pattern, const char *context)
{
    const char  *full;
    glob_t       g;
    size_t       i;
    int          rc;

    if (r->c->no_include) {
        conf_error(r, "\"include\" is not allowed here");
        return -1;
    }
    full = conf_full_name(r->c, pattern);
    if (full == NULL) {
        conf_error(r, "out of memory");
        return -1;
    }
    if (strpbrk(full, "*?[") == NULL) {
        return conf_load_file(r->c, full, context, r);
    }
    rc = glob(full, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) {
        return 0;                       /* as nginx: no file, no error */
    }
    if (rc != 0) {
        conf_error(r, "glob() \"%s\" failed", full);
        return -1;
    }
    for (i = 0; i < g.gl_pathc; i++) {
        if (conf_load_file(r->c, g.gl_pathv[i], context, r) != 0) {
            globfree(&g);
            return -1;
        }
    }
    globfree(&g);
    return 0;
}


/* The directives up to the end of the text (nested 0) or of the block
 * (nested 1); context names where they are. */
static int
conf_block(conf_reader_t *r, const char *context, int nested)
{
    char         *words[CONF_MAX_ARGS];
    char         *inner;
    size_t        n;
    unsigned      line = r->line;
    int           t;

    for ( ;; ) {
        t = conf_token(r, words, &n, &line);
        if (t < 0) {
            return -1;
        }
        if (t == 0) {
            if (nested) {
                conf_error(r, "unexpected end of file, expecting \"}\"");
                return -1;
            }
            return 0;
        }
        if (t == '}') {
            if (!nested) {
                conf_error(r, "unexpected \"}\"");
                return -1;
            }
            return 0;
        }
        if (words[0][0] == '\0') {
            r->line = line;
            conf_error(r, "unknown directive \"\"");
            return -1;
        }
        if (t == ';' && strcmp(words[0], "include") == 0) {
            if (n != 2) {
                r->line = line;
                conf_error(r, "invalid number of arguments in \"include\""
                           " directive");
                return -1;
            }
            if (conf_include(r, words[1], context) != 0) {
                return -1;
            }
            continue;
        }
        if (conf_add(r, words, n, context, line) != 0) {
            return -1;
        }
        if (t == '{') {
            if (r->c->depth + (unsigned) nested >= CONF_MAX_DEPTH) {
                conf_error(r, "blocks nested too deep");
                return -1;
            }
            if (asprintf(&inner, "%s%s%s", context, *context ? " " : "",
                         words[0]) < 0
                || conf_own(r->c, inner) == NULL)
            {
                conf_error(r, "out of memory");
                return -1;
            }
            r->c->depth++;
            t = conf_block(r, inner, 1);
            r->c->depth--;
            if (t != 0) {
                return -1;
            }
        }
    }
}


int
conf_parse(conf_t *c, const char *text, size_t len, const char *file)
{
    conf_reader_t  r;

    r.c = c;
    r.p = text;
    r.end = text + len;
    r.file = file;
    r.line = 1;
    return conf_block(&r, "", 0);
}


/* Read one file and parse it in context; from (NULL for the main file)
 * is where it was included, for the error message. */
static int
conf_load_file(conf_t *c, const char *path, const char *context,
    conf_reader_t *from)
{
    conf_reader_t  r;
    FILE          *f;
    char          *text, *name;
    size_t         n;
    struct stat    st;
    int            rc, err;

    if (c->depth >= CONF_MAX_DEPTH) {
        conf_error(from, "include nested too deep (a loop?)");
        return -1;
    }
    name = conf_strndup(c, path, strlen(path));
    if (name == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        err = errno;
        if (from != NULL) {
            conf_error(from, "open() \"%s\" failed (%d: %s)", path, err,
                       strerror(err));
        } else {
            snprintf(c->err, sizeof(c->err), "open() \"%s\" failed (%d: %s)",
                     path, err, strerror(err));
        }
        return -1;
    }
    /* the whole file, read in one piece of its size (at most the cap) */
    text = NULL;
    n = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)
        && st.st_size <= CONF_MAX_FILE)
    {
        text = malloc((size_t) st.st_size + 1);
        if (text != NULL) {
            n = fread(text, 1, (size_t) st.st_size + 1, f);
        }
    }
    err = text == NULL || ferror(f) || n > (size_t) st.st_size;
    fclose(f);
    if (err) {
        free(text);
        snprintf(c->err, sizeof(c->err), "cannot read \"%s\": not a regular"
                 " file of at most 16 MB, or out of memory", path);
        return -1;
    }

    r.c = c;
    r.p = text;
    r.end = text + n;
    r.file = name;
    r.line = 1;
    c->depth++;
    rc = conf_block(&r, context, 0);
    c->depth--;
    free(text);
    return rc;
}


int
conf_load(conf_t *c, const char *path)
{
    char        cwd[4096], *full, *slash;

    if (path[0] != '/') {
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            snprintf(c->err, sizeof(c->err), "getcwd() failed: %s",
                     strerror(errno));
            return -1;
        }
        if (asprintf(&full, "%s/%s", cwd, path) < 0) {
            full = NULL;
        }
    } else {
        full = strdup(path);
    }
    if (conf_own(c, full) == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }
    /* nginx's conf prefix: the main file's folder */
    slash = strrchr(full, '/');
    c->prefix = conf_strndup(c, full, (size_t) (slash - full) + 1);
    if (c->prefix == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }
    return conf_load_file(c, full, "", NULL);
}


long long
conf_parse_time(const char *s, int is_sec)
{
    /* units in the order nginx wants them, largest first */
    static const struct {
        const char  *unit;
        long long    ms;
    } units[] = {
        { "y", 365LL * 86400000 }, { "M", 30LL * 86400000 },
        { "w", 7LL * 86400000 }, { "d", 86400000LL }, { "h", 3600000LL },
        { "ms", 1 }, { "m", 60000LL }, { "s", 1000LL },
    };
    static const int   rank[] = { 0, 1, 2, 3, 4, 7, 5, 6 };
    long long          total = 0, v;
    int                last = -1, any = 0, r;
    size_t             i, k;

    while (*s == ' ') {
        s++;
    }
    while (*s != '\0') {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        for (v = 0; *s >= '0' && *s <= '9'; s++) {
            if (v > (1LL << 40)) {
                return -1;
            }
            v = v * 10 + (*s - '0');
        }
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            k = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, k) == 0) {
                break;
            }
        }
        if (i == sizeof(units) / sizeof(units[0])) {
            /* a number without a unit: seconds, and it must be last */
            if (*s != '\0' && *s != ' ') {
                return -1;
            }
            r = 6;
            v *= 1000;
        } else {
            if (units[i].ms == 1 && is_sec) {
                return -1;
            }
            r = rank[i];
            v *= units[i].ms;
            s += k;
        }
        if (r <= last) {
            return -1;                  /* "1s1h", "1m1m" */
        }
        last = r;
        total += v;
        any = 1;
        if (total > (1LL << 52)) {
            return -1;
        }
        while (*s == ' ') {
            s++;
        }
    }
    if (!any) {
        return -1;
    }
    return is_sec ? total / 1000 : total;
}
