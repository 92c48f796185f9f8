/*
 * conf: a reader of nginx.conf syntax, so ticketd takes its settings from
 * the file nginx reads (ticketd -c /etc/nginx/nginx.conf).
 *
 * It knows the syntax, not the directives: words separated by blanks,
 * "..." and '...' quoted words with nginx's escapes (\" \' \\ \t \r \n),
 * "#" comments, ";" ending a directive, "{" "}" blocks, and "include"
 * with a file or a glob (sorted, as nginx expands it; a glob matching
 * nothing is no error), relative to the main file's folder as nginx's
 * conf prefix.  The result is the flat list of every directive with its
 * words, its block path ("" for main, "http", "http server", ...) and the
 * file and line it came from; the caller picks what it needs.
 *
 * The text reader (conf_parse) does no I/O but for "include", which a
 * conf_t made with no_include refuses, so it can be fuzzed on any bytes.
 * Errors are values: -1 and a message in c->err that ends, as nginx's,
 * with " in FILE:LINE".
 */

#ifndef TICKETD_CONF_H
#define TICKETD_CONF_H

#include <stddef.h>

#define CONF_MAX_ARGS      64      /* words of one directive */
#define CONF_MAX_DEPTH     32      /* nested blocks and includes */
#define CONF_MAX_FILE      (16 * 1024 * 1024)

typedef struct {
    const char   *name;            /* first word */
    const char  **args;            /* the other words, nargs of them */
    size_t        nargs;
    const char   *context;         /* "" | "http" | "http server" ... */
    const char   *file;            /* where it was read */
    unsigned      line;
} conf_directive_t;

typedef struct {
    conf_directive_t  *d;          /* in file order, includes in place */
    size_t             n, cap;
    char              *prefix;     /* main file's folder, ending in '/' */
    int                no_include; /* "include" is an error (fuzzing) */
    unsigned           depth;      /* include nesting now */
    void             **owned;      /* every allocation, freed together */
    size_t             nowned, capowned;
    char               err[1024];
} conf_t;

/* An empty configuration; prefix (may be NULL: "") resolves relative
 * include paths.  0, or -1 when memory ran out. */
int conf_init(conf_t *c, const char *prefix);

/* Read path (made absolute against the working folder if relative) and
 * every file it includes; the prefix becomes its folder.  0 or -1. */
int conf_load(conf_t *c, const char *path);

/* Parse text[0..len) read from `file` into c (appended).  0 or -1. */
int conf_parse(conf_t *c, const char *text, size_t len, const char *file);

/* path when absolute, else prefix + path; owned by c.  NULL: no memory. */
const char *conf_full_name(conf_t *c, const char *path);

/* Hand p (malloc'ed) to c, freed by conf_free; p, or NULL (p freed)
 * when memory ran out. */
void *conf_keep(conf_t *c, void *p);

/* Free everything c owns (directives, words, names). */
void conf_free(conf_t *c);

/*
 * An nginx time ("30s", "1h30m", "500ms", "2d"; no unit = seconds), as
 * ngx_parse_time reads it: in milliseconds, or in seconds with is_sec
 * (where "ms" is refused).  -1 when invalid.
 */
long long conf_parse_time(const char *s, int is_sec);

#endif /* TICKETD_CONF_H */
