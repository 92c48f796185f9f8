/*
 * ts_assign: assignment scoring and the choice among candidates, with the
 * explanation stored on the ticket.  Owns nothing beyond one call: the
 * candidates and skills are borrowed, the explanation object belongs to
 * the caller once returned, the reason text is built and freed here.
 *
 * The numbers are the original app's (see ts_assign.h); what is ours is
 * the handling of inputs the original never met (NaN, negative counts,
 * unusable configuration), each noted where it is handled, and the
 * deterministic end of the tie-break.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ts_assign.h"
#include "ts_json_writer.h"

#define TS_ASSIGN_SKILL_NONE   0.5  /* ticket lists no skills */
#define TS_ASSIGN_PERF_NEW     0.7  /* never resolved a ticket */

/*
 * Slack added to the tie margin so that scores exactly tie_margin apart on
 * paper (0.70 and 0.65) are tied whatever the binary rounding made of
 * them.  Far below the 3 decimals anyone sees.
 */
#define TS_ASSIGN_EPS          1e-9

#define TS_ASSIGN_NAMES_MAX    3    /* tied rivals named in the reason */


typedef struct {
    double  skill;
    double  avail;
    double  perf;
    double  score;
} ts_assign_terms_t;


void
ts_assign_cfg_default(ts_assign_cfg_t *cfg)
{
    cfg->w_skill = 0.5;
    cfg->w_avail = 0.3;
    cfg->w_perf = 0.2;
    cfg->capacity = 10;
    cfg->target_hours = 24;
    cfg->tie_margin = 0.05;
}


int
ts_assign_number(const char *s, double *v)
{
    const char  *p = s;
    char        *end;
    int          digits = 0, dot = 0;

    for ( ; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;
        } else if (*p == '.' && !dot) {
            dot = 1;
        } else {
            return -1;
        }
    }
    if (digits == 0 || digits > 15) {
        return -1;
    }
    *v = strtod(s, &end);
    return *end == '\0' ? 0 : -1;
}


int
ts_assign_cfg_weight(ts_assign_cfg_t *cfg, const char *word, ts_errmsg_t err)
{
    static const char  *names[] = { "skill=", "availability=",
                                    "performance=" };
    double             *fields[3];
    double              v;
    size_t              i, k;

    fields[0] = &cfg->w_skill;
    fields[1] = &cfg->w_avail;
    fields[2] = &cfg->w_perf;
    for (i = 0; i < 3; i++) {
        k = strlen(names[i]);
        if (strncmp(word, names[i], k) == 0) {
            if (ts_assign_number(word + k, &v) != 0) {
                snprintf(err, TS_ERRMSG_MAX, "\"%.60s\" wants a decimal"
                         " number such as 0.5", word);
                return -1;
            }
            *fields[i] = v;
            return 0;
        }
    }
    snprintf(err, TS_ERRMSG_MAX, "unknown weight \"%.60s\": expected"
             " skill=, availability= or performance=", word);
    return -1;
}


int
ts_assign_cfg_check(const ts_assign_cfg_t *cfg, ts_errmsg_t err)
{
    const char  *bad = NULL;

    if (!(isfinite(cfg->w_skill) && cfg->w_skill >= 0)) {
        bad = "skill weight must be a number >= 0";
    } else if (!(isfinite(cfg->w_avail) && cfg->w_avail >= 0)) {
        bad = "availability weight must be a number >= 0";
    } else if (!(isfinite(cfg->w_perf) && cfg->w_perf >= 0)) {
        bad = "performance weight must be a number >= 0";
    } else if (cfg->w_skill + cfg->w_avail + cfg->w_perf <= 0) {
        bad = "at least one weight must be above 0";
    } else if (!(isfinite(cfg->capacity) && cfg->capacity > 0)) {
        bad = "capacity must be a number > 0";
    } else if (!(isfinite(cfg->target_hours) && cfg->target_hours > 0)) {
        bad = "target hours must be a number > 0";
    } else if (!(cfg->tie_margin >= 0 && cfg->tie_margin <= 1)) {
        bad = "tie margin must be between 0 and 1";
    }
    if (bad == NULL) {
        return 0;
    }
    snprintf(err, TS_ERRMSG_MAX, "%s", bad);
    return -1;
}


/* --- skill ---------------------------------------------------------------- */

static int
ts_assign_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char) s[i] >= 0x80) {
            return 0;
        }
    }
    return 1;
}


/* ASCII-only case folding, independent of the process locale. */
static int
ts_assign_ascii_caseeq(const char *a, size_t alen, const char *b,
    size_t blen)
{
    unsigned char  ca, cb;

    if (alen != blen) {
        return 0;
    }
    for (size_t i = 0; i < alen; i++) {
        ca = (unsigned char) a[i];
        cb = (unsigned char) b[i];
        ca = (ca >= 'A' && ca <= 'Z') ? (unsigned char) (ca + 32) : ca;
        cb = (cb >= 'A' && cb <= 'Z') ? (unsigned char) (cb + 32) : cb;
        if (ca != cb) {
            return 0;
        }
    }
    return 1;
}


/*
 * Two skills are the same when their lower-case forms are, as the
 * original's toLowerCase() comparison.  Stored skills are nearly always
 * ASCII, which needs no allocation; otherwise both are folded with
 * ts_utf8_fold(), and should that run out of memory, ASCII folding is the
 * answer rather than an error nobody could act on.
 */
static int
ts_assign_skill_eq(json_t *a, json_t *b)
{
    const char  *as = json_string_value(a), *bs = json_string_value(b);
    size_t       alen = json_string_length(a), blen = json_string_length(b);
    size_t       fal, fbl;
    char        *fa, *fb;
    int          eq;

    if (ts_assign_ascii(as, alen) && ts_assign_ascii(bs, blen)) {
        return ts_assign_ascii_caseeq(as, alen, bs, blen);
    }
    fa = ts_utf8_fold(as, alen, &fal);
    fb = ts_utf8_fold(bs, blen, &fbl);
    if (fa == NULL || fb == NULL) {
        eq = ts_assign_ascii_caseeq(as, alen, bs, blen);
    } else {
        eq = fal == fbl && memcmp(fa, fb, fal) == 0;
    }
    free(fa);
    free(fb);
    return eq;
}


static size_t
ts_assign_nstrings(json_t *arr)
{
    json_t  *v;
    size_t   i, n = 0;

    /* json_array_foreach() runs zero times on NULL or a non-array */
    json_array_foreach(arr, i, v) {
        n += json_is_string(v) ? 1 : 0;
    }
    return n;
}


double
ts_assign_skill(json_t *ticket_skills, json_t *mod_skills)
{
    json_t  *t, *m;
    size_t   i, j, total, matched = 0;

    /* the original tests "ticket has none" first: 0.5 even for a
     * moderator without skills */
    total = ts_assign_nstrings(ticket_skills);
    if (total == 0) {
        return TS_ASSIGN_SKILL_NONE;
    }
    if (ts_assign_nstrings(mod_skills) == 0) {
        return 0;
    }

    /* each ticket entry counts once, duplicates included, as the
     * original's ticketSkills.filter(...).length / ticketSkills.length */
    json_array_foreach(ticket_skills, i, t) {
        if (!json_is_string(t)) {
            continue;
        }
        json_array_foreach(mod_skills, j, m) {
            if (json_is_string(m) && ts_assign_skill_eq(t, m)) {
                matched++;
                break;
            }
        }
    }
    return (double) matched / (double) total;
}


/* --- availability and performance ----------------------------------------- */

double
ts_assign_availability(const ts_assign_cfg_t *cfg, int64_t active)
{
    double  a;

    /* a capacity that is not above 0 leaves no room for anyone */
    if (!(cfg->capacity > 0)) {
        return 0;
    }
    if (active <= 0) {
        return 1;
    }
    a = 1.0 - (double) active / cfg->capacity;
    return a > 0 ? a : 0;
}


double
ts_assign_performance(const ts_assign_cfg_t *cfg, int64_t resolved,
    double avg_hours)
{
    double  target = cfg->target_hours, p;

    /* no usable history (none resolved, or an average that is not a
     * number) is judged as a newcomer */
    if (resolved <= 0 || isnan(avg_hours)) {
        return TS_ASSIGN_PERF_NEW;
    }
    if (avg_hours <= target) {
        return 1;
    }
    /* without a positive target there is no scale to degrade over */
    if (!(target > 0)) {
        return 0;
    }
    p = 1.0 - 0.5 * (avg_hours - target) / target;
    return p > 0 ? p : 0;           /* an infinite average gives -inf: 0 */
}


/*
 * The one place terms and score are computed.  ts_assign_choose() asks
 * for the same candidate's score more than once instead of keeping an
 * array of n scores, and relies on getting the same bits each time: kept
 * out of line, so that no call site is compiled with its own rounding
 * (floating-point contraction into fused multiply-add differs by site).
 */
static void __attribute__((noinline))
ts_assign_eval(const ts_assign_cfg_t *cfg, json_t *ticket_skills,
    const ts_candidate_t *c, ts_assign_terms_t *t)
{
    t->skill = ts_assign_skill(ticket_skills, c->skills);
    t->avail = ts_assign_availability(cfg, c->active);
    t->perf = ts_assign_performance(cfg, c->total_resolved,
                                    c->avg_resolution_hours);
    t->score = cfg->w_skill * t->skill + cfg->w_avail * t->avail
               + cfg->w_perf * t->perf;
}


double
ts_assign_score(const ts_assign_cfg_t *cfg, json_t *ticket_skills,
    const ts_candidate_t *c)
{
    ts_assign_terms_t  t;

    ts_assign_eval(cfg, ticket_skills, c, &t);
    return t.score;
}


/* --- choice --------------------------------------------------------------- */

/* State of one ts_assign_choose() call, shared by its helpers. */
typedef struct {
    const ts_assign_cfg_t  *cfg;
    json_t                 *ticket_skills;
    const ts_candidate_t   *c;
    size_t                  n;
    int                     online;     /* someone is online */
    double                  best;       /* best eligible score */
    double                  margin;     /* tie margin in effect */
    double                  floor;      /* lowest score still tied */
    size_t                  nelig;
    size_t                  ntied;
    int                     win;
} ts_assign_run_t;


static int
ts_assign_eligible(const ts_assign_run_t *r, size_t i)
{
    return !r->online || r->c[i].status == TS_PRESENCE_ONLINE;
}


/* A score for ranking: NaN (from NaN weights) ranks below everything. */
static double
ts_assign_rank(const ts_assign_run_t *r, size_t i)
{
    ts_assign_terms_t  t;

    ts_assign_eval(r->cfg, r->ticket_skills, &r->c[i], &t);
    return isnan(t.score) ? -INFINITY : t.score;
}


static int
ts_assign_tied(const ts_assign_run_t *r, size_t i, double score)
{
    return ts_assign_eligible(r, i) && score >= r->floor;
}


static int64_t
ts_assign_last(const ts_candidate_t *c)
{
    return c->last_assigned_at > 0 ? c->last_assigned_at : 0;
}


/*
 * Which rule separates tied candidates a (index ia) and b: returns the
 * rule's level (1 last assignment, 2 score, 3 id, 4 input order) and sets
 * *a_first when a goes first.
 */
static int
ts_assign_order(const ts_assign_run_t *r, size_t ia, double sa, size_t ib,
    double sb, int *a_first)
{
    const ts_candidate_t  *a = &r->c[ia], *b = &r->c[ib];
    int64_t                la = ts_assign_last(a), lb = ts_assign_last(b);
    int                    cmp;

    if (la != lb) {
        *a_first = la < lb;
        return 1;
    }
    if (sa != sb) {
        *a_first = sa > sb;
        return 2;
    }
    if (a->id != NULL && b->id != NULL) {
        cmp = strcasecmp(a->id, b->id);
    } else {
        cmp = (a->id == NULL) - (b->id == NULL);    /* NULL last */
    }
    if (cmp != 0) {
        *a_first = cmp < 0;
        return 3;
    }
    *a_first = ia < ib;
    return 4;
}


/* A printable name for the reason: username, else id, else a dash. */
static const char *
ts_assign_label(const ts_candidate_t *c)
{
    if (c->username && c->username[0]
        && ts_valid_utf8(c->username, strlen(c->username)))
    {
        return c->username;
    }
    if (c->id && c->id[0] && ts_valid_utf8(c->id, strlen(c->id))) {
        return c->id;
    }
    return "-";
}


/* Append x with 3 decimals.  320 bytes hold any double: "%.3f" of
 * -DBL_MAX is 314 characters. */
static void
ts_assign_jw_num(ts_jw_t *w, double x)
{
    char  buf[320];
    int   len;

    len = snprintf(buf, sizeof(buf), "%.3f", x);
    if (len > 0 && (size_t) len < sizeof(buf)) {
        ts_jw_raw(w, buf, (size_t) len);
    }
}


/*
 * The reason, one sentence:
 *   [nobody online; chose among all: ]
 *   highest score 0.843[ among 2 online]
 *   score 0.700 tied within 0.05 with bob[, carol and 2 more]; <rule>
 * NULL if memory ran out.
 */
static char *
ts_assign_reason(const ts_assign_run_t *r)
{
    ts_jw_t   w;
    char      buf[64];
    double    ws, s;
    size_t    i, named = 0;
    int       level = 0, lv, first, len;

    ts_jw_init(&w, 128);
    if (r->n == 0 || r->win < 0) {
        TS_JW_LIT(&w, "no moderators");
        return ts_jw_finish(&w, NULL);
    }
    if (!r->online) {
        TS_JW_LIT(&w, "nobody online; chose among all: ");
    }
    ws = ts_assign_rank(r, (size_t) r->win);

    if (r->ntied <= 1) {
        TS_JW_LIT(&w, "highest score ");
        ts_assign_jw_num(&w, ws);
        if (r->online && r->nelig < r->n) {
            len = snprintf(buf, sizeof(buf), " among %zu online", r->nelig);
            if (len > 0 && (size_t) len < sizeof(buf)) {
                ts_jw_raw(&w, buf, (size_t) len);
            }
        }
        return ts_jw_finish(&w, NULL);
    }

    TS_JW_LIT(&w, "score ");
    ts_assign_jw_num(&w, ws);
    len = snprintf(buf, sizeof(buf), " tied within %g with ", r->margin);
    if (len > 0 && (size_t) len < sizeof(buf)) {
        ts_jw_raw(&w, buf, (size_t) len);
    }
    for (i = 0; i < r->n; i++) {
        if (i == (size_t) r->win) {
            continue;
        }
        s = ts_assign_rank(r, i);
        if (!ts_assign_tied(r, i, s)) {
            continue;
        }
        lv = ts_assign_order(r, (size_t) r->win, ws, i, s, &first);
        level = lv > level ? lv : level;
        if (named < TS_ASSIGN_NAMES_MAX) {
            if (named > 0) {
                if (named + 2 == r->ntied) {
                    TS_JW_LIT(&w, " and ");
                } else {
                    TS_JW_LIT(&w, ", ");
                }
            }
            ts_jw_lit(&w, ts_assign_label(&r->c[i]));
        }
        named++;
    }
    if (named > TS_ASSIGN_NAMES_MAX) {
        len = snprintf(buf, sizeof(buf), " and %zu more",
                       named - TS_ASSIGN_NAMES_MAX);
        if (len > 0 && (size_t) len < sizeof(buf)) {
            ts_jw_raw(&w, buf, (size_t) len);
        }
    }

    switch (level) {
    case 1:
        if (ts_assign_last(&r->c[r->win]) == 0) {
            TS_JW_LIT(&w, "; never assigned before");
        } else {
            TS_JW_LIT(&w, "; assigned least recently");
        }
        break;
    case 2:
        TS_JW_LIT(&w, "; assigned least recently, then highest score");
        break;
    case 3:
        TS_JW_LIT(&w, "; same last assignment and score, then lowest id");
        break;
    default:
        TS_JW_LIT(&w, "; indistinguishable, then first listed");
        break;
    }
    return ts_jw_finish(&w, NULL);
}


/* Rounded to 3 decimals; null for what JSON cannot hold. */
static json_t *
ts_assign_num3(double x)
{
    double  r;

    if (!isfinite(x)) {
        return json_null();
    }
    r = round(x * 1000.0) / 1000.0 + 0.0;   /* + 0.0 turns -0 into 0 */
    return json_real(isfinite(r) ? r : x);
}


/* A JSON string, or null for NULL or text that is not UTF-8. */
static json_t *
ts_assign_str(const char *s)
{
    json_t  *j = s ? json_string(s) : NULL;

    return j ? j : json_null();
}


/* json_object_set_new(), remembering a failure in *ok. */
static void
ts_assign_put(json_t *obj, const char *key, json_t *value, int *ok)
{
    if (json_object_set_new(obj, key, value) != 0) {
        *ok = 0;
    }
}


static json_t *
ts_assign_candidate_json(const ts_assign_run_t *r, size_t i, int *ok)
{
    const ts_candidate_t  *c = &r->c[i];
    ts_assign_terms_t      t;
    json_t                *o = json_object();
    double                 s;

    ts_assign_eval(r->cfg, r->ticket_skills, c, &t);
    s = isnan(t.score) ? -INFINITY : t.score;
    ts_assign_put(o, "_id", ts_assign_str(c->id), ok);
    ts_assign_put(o, "username", ts_assign_str(c->username), ok);
    ts_assign_put(o, "status", json_string(ts_presence_name(c->status)), ok);
    ts_assign_put(o, "skill", ts_assign_num3(t.skill), ok);
    ts_assign_put(o, "availability", ts_assign_num3(t.avail), ok);
    ts_assign_put(o, "performance", ts_assign_num3(t.perf), ok);
    ts_assign_put(o, "score", ts_assign_num3(t.score), ok);
    ts_assign_put(o, "lastAssignedAt", ts_iso_json(ts_assign_last(c)), ok);
    ts_assign_put(o, "eligible", json_boolean(ts_assign_eligible(r, i)), ok);
    ts_assign_put(o, "tied", json_boolean(ts_assign_tied(r, i, s)), ok);
    return o;
}


/* The explanation object; NULL if memory ran out. */
static json_t *
ts_assign_explain(const ts_assign_run_t *r)
{
    const ts_assign_cfg_t  *cfg = r->cfg;
    json_t                 *e = json_object(), *list = json_array();
    char                   *reason;
    int                     ok = 1;

    for (size_t i = 0; i < r->n; i++) {
        if (json_array_append_new(list, ts_assign_candidate_json(r, i, &ok))
            != 0)
        {
            ok = 0;
        }
    }
    ts_assign_put(e, "candidates", list, &ok);
    ts_assign_put(e, "chosen",
                  r->win >= 0 ? ts_assign_str(r->c[r->win].id) : json_null(),
                  &ok);
    reason = ts_assign_reason(r);
    ts_assign_put(e, "reason", reason ? json_string(reason) : NULL, &ok);
    free(reason);
    ts_assign_put(e, "weights",
                  json_pack("{s:o, s:o, s:o}",
                            "skill", ts_assign_num3(cfg->w_skill),
                            "availability", ts_assign_num3(cfg->w_avail),
                            "performance", ts_assign_num3(cfg->w_perf)),
                  &ok);
    ts_assign_put(e, "capacity", ts_assign_num3(cfg->capacity), &ok);
    ts_assign_put(e, "targetHours", ts_assign_num3(cfg->target_hours), &ok);
    ts_assign_put(e, "tieMargin", ts_assign_num3(cfg->tie_margin), &ok);

    if (!ok) {
        json_decref(e);
        return NULL;
    }
    return e;
}


int
ts_assign_choose(const ts_assign_cfg_t *cfg, json_t *ticket_skills,
    const ts_candidate_t *c, size_t n, json_t **explanation)
{
    ts_assign_run_t  r;
    double           s, ws = 0;
    size_t           i;
    int              first;

    memset(&r, 0, sizeof(r));
    r.cfg = cfg;
    r.ticket_skills = ticket_skills;
    r.c = c;
    r.n = c ? n : 0;
    r.win = -1;
    r.best = -INFINITY;

    for (i = 0; i < r.n; i++) {
        r.online |= c[i].status == TS_PRESENCE_ONLINE;
    }
    for (i = 0; i < r.n; i++) {
        if (ts_assign_eligible(&r, i)) {
            r.nelig++;
            s = ts_assign_rank(&r, i);
            r.best = s > r.best ? s : r.best;
        }
    }

    /* a margin that is not a number or below 0 ties only equal scores */
    r.margin = cfg->tie_margin >= 0 ? cfg->tie_margin : 0;
    r.floor = r.best - r.margin - TS_ASSIGN_EPS;
    if (isnan(r.floor)) {               /* inf - inf: everyone is tied */
        r.floor = -INFINITY;
    }

    /* the same scores, bit for bit (see ts_assign_eval), so the best is
     * always among the tied */
    for (i = 0; i < r.n; i++) {
        s = ts_assign_rank(&r, i);
        if (!ts_assign_tied(&r, i, s)) {
            continue;
        }
        r.ntied++;
        first = 1;
        if (r.win >= 0) {
            (void) ts_assign_order(&r, i, s, (size_t) r.win, ws, &first);
        }
        if (first) {
            r.win = (int) i;
            ws = s;
        }
    }

    if (explanation) {
        *explanation = ts_assign_explain(&r);
    }
    return r.win;
}


int
ts_assign_excluded(json_t *exclude, const char *id)
{
    json_t  *v;
    size_t   i;

    if (id == NULL || !json_is_array(exclude)) {
        return 0;
    }
    json_array_foreach(exclude, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), id) == 0) {
            return 1;
        }
    }
    return 0;
}
