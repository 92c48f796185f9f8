/*
 * ts_triage_offline: the built-in offline triage (see ts_triage.h), used
 * when no provider is set or the provider keeps failing.  Owns the
 * keyword tables (all static const), the text normalisation and matching,
 * and the summary and notes it writes.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem */
#endif
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ts_json_writer.h"
#include "ts_triage.h"
#include "ts_validate.h"

#define TT_NOTES_SKILLS  8        /* skills with steps in offline notes */


/* A byte that belongs to a word (UTF-8 multi-byte characters do). */
static int
tt_word_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

/* ---- offline triage ------------------------------------------------- */

/*
 * Keywords are lower-case ASCII, '|'-separated, matched on word
 * boundaries in the normalised text (lower-case, one space for any run of
 * whitespace, ' for a typographic apostrophe); a trailing '*' matches any
 * word ending ("crash*": crash, crashed, crashing).  Order matters only
 * for which keyword the notes name.
 */

static const char  tt_high_keywords[] =
    "outage|outages|is down|are down|was down|went down|goes down|"
    "been down|site down|server down|service down|down for everyone|"
    "down for all|crash*|data loss|lost data|lost all|deleted all|"
    "security|breach*|hacked|compromised|vulnerab*|exploit*|data leak*|"
    "leaked|cannot log in|cannot login|can't log in|can't login|"
    "cant log in|cant login|can not log in|unable to log in|"
    "unable to login|cannot sign in|can't sign in|unable to sign in|"
    "locked out|payment failed|payments failed|payment failing|"
    "payments failing|payment fails|payments fail|payment error|"
    "charged twice|double charged|urgent|urgently|asap|emergency|"
    "critical|production|500 error|error 500|http 500|"
    "internal server error|502|503|bad gateway|service unavailable|"
    "corrupt*|all users|every user|everyone is";

static const char  tt_low_keywords[] =
    "typo|typos|question|questions|how do i|how can i|how do you|"
    "feature request*|cosmetic|suggestion*|would be nice|nice to have|"
    "minor|spelling|misspel*|wording|enhancement|not urgent|no rush|"
    "low priority|when you have time|just wondering|documentation";

typedef struct {
    const char  *skill;
    const char  *keywords;
    const char  *step;          /* Markdown: a suggested first step */
} tt_skill_t;

static const tt_skill_t  tt_vocabulary[] = {
    { "react", "react|reactjs|react.js|jsx|tsx|usestate|useeffect|redux|"
      "next.js|nextjs",
      "Check the browser console for React errors and reproduce with "
      "React DevTools open." },
    { "frontend", "frontend|front-end|front end|ui|user interface|button*|"
      "layout|browser*|dropdown|drop-down|modal|navbar|sidebar|website|"
      "web page|webpage|chrome|firefox|safari|html",
      "Reproduce in a clean browser profile; note browser, version and "
      "screen size." },
    { "css", "css|stylesheet*|style sheet|styling|tailwind|sass|scss|"
      "flexbox|media quer*|font|fonts|misalign*|alignment|overlap*|"
      "colour*|color*|dark mode|responsive",
      "Find the CSS rule responsible in the browser dev tools; check "
      "recent stylesheet changes at other screen widths." },
    { "javascript", "javascript|js|ecmascript|es6|typeerror|"
      "undefined is not|is not a function|console error*|uncaught",
      "Capture the full JavaScript error and stack trace from the console "
      "(with source maps) and the steps that trigger it." },
    { "typescript", "typescript|tsconfig|tsc|type error*",
      "Run `tsc --noEmit` and read the first error; check recent "
      "dependency type changes." },
    { "node.js", "node.js|nodejs|node js|node server|node version|npm|"
      "yarn|pnpm|node_modules|package.json",
      "Check the Node.js server logs and Node/npm versions; a clean "
      "`npm ci` rules out dependency drift." },
    { "express", "express.js|expressjs|express server|express app|"
      "express route*|middleware",
      "Check the route and middleware order for the failing request and "
      "the server log for its stack trace." },
    { "api", "api|apis|rest api|endpoint*|graphql|webhook*|json|cors|"
      "status code|http 4*|http 5*|404|429",
      "Reproduce the failing call with curl (request, status, body) and "
      "find the same request in the API logs." },
    { "mongodb", "mongodb|mongo|mongoose|mongod|atlas|objectid|replica set",
      "Check the MongoDB logs and `db.currentOp()` for slow or failing "
      "operations, and the indexes of the queries involved." },
    { "sql", "sql|mysql|mariadb|postgres|postgresql|psql|sqlite|"
      "sql query|sql queries|stored procedure*",
      "Find the failing or slow statement in the logs and check its plan "
      "with `EXPLAIN`." },
    { "database", "database*|db|data loss|lost data|backup*|restore*|"
      "replication|deadlock*|migration*|schema|corrupt*",
      "Check database health (connections, disk, replication lag) and "
      "that a recent backup exists before changing anything." },
    { "redis", "redis|cache|caching|cached|memcached|stale data",
      "Check whether stale or missing cache entries explain it; retry with "
      "the cache bypassed." },
    { "devops", "devops|deploy*|ci|ci/cd|pipeline*|github actions|"
      "gitlab ci|jenkins|terraform|ansible|infrastructure|rollback|"
      "release*|git|github|gitlab",
      "Check what was deployed or changed recently (deploy log, CI) and "
      "whether rolling back fixes it." },
    { "docker", "docker|dockerfile|docker-compose|docker compose|"
      "container*|podman",
      "Check `docker ps` and the container logs for restarts; compare the "
      "running image tag with the expected one." },
    { "nginx", "nginx|reverse proxy|proxy|upstream|502|504|bad gateway|"
      "gateway timeout|load balancer|vhost",
      "Read the nginx error log around the failures and check the "
      "upstream servers it proxies to." },
    { "linux", "linux|ubuntu|debian|centos|rhel|systemd|systemctl|bash|"
      "shell|ssh|cron*|permission denied|disk space|disk full|"
      "no space left|out of memory|oom",
      "Check the host: `journalctl`, `df -h`, memory, and "
      "`systemctl status` of the service." },
    { "kubernetes", "kubernetes|k8s|kubectl|helm|pod|pods|ingress|"
      "crashloopbackoff",
      "Inspect the pods (`kubectl describe`, `kubectl logs`) for "
      "restarts, failed probes or evictions." },
    { "cloud", "aws|s3|ec2|lambda|cloudfront|azure|gcp|google cloud|cloud|"
      "heroku|vercel|netlify",
      "Check the provider's status page and console for incidents, quotas "
      "or permission errors." },
    { "billing", "billing|bill|billed|invoice*|charge|charged|charges|"
      "overcharged|refund*|subscription*|payment*|checkout|receipt*",
      "Look up the customer in the billing system: subscription state, "
      "recent charges and invoices." },
    { "payments", "payment*|pay|paying|paid|checkout|credit card|"
      "debit card|card declined|card was declined|declined|transaction*|"
      "paypal|apple pay|google pay|stripe",
      "Check the payment provider's dashboard for the failed transactions "
      "and decline codes; confirm whether customers were charged." },
    { "stripe", "stripe|stripe.js|payment intent*|paymentintent*",
      "Look up the PaymentIntents and webhook deliveries in the Stripe "
      "dashboard; check the API keys and webhook secret in use." },
    { "invoicing", "invoice*|invoicing|vat|sales tax|tax|receipt*|"
      "credit note*",
      "Check the invoice's line items, tax and currency against the "
      "customer's plan." },
    { "email", "email*|e-mail*|mail|mails|mailbox|inbox|newsletter*|spam|"
      "junk|bounce*|unsubscribe|verification link|reset link",
      "Check the delivery log for the recipient (sent, bounced, deferred) "
      "and ask the user to look in the spam folder." },
    { "smtp", "smtp|sendgrid|mailgun|postmark|amazon ses|postfix|dkim|spf|"
      "dmarc|mx record*",
      "Verify the SMTP or provider credentials and the sender domain's "
      "SPF, DKIM and DMARC records." },
    { "auth", "auth|authentication|authorization|login|log in|logging in|"
      "logged out|log-in|sign in|signin|sign-in|signing in|password*|2fa|"
      "mfa|two-factor|otp|session*|jwt|token*|locked out|access denied|"
      "forbidden|401|403",
      "Check the auth logs for the user (failed attempts, lockouts, "
      "expired tokens) and that account and role are as expected." },
    { "security", "security|breach*|hacked|hack|compromised|vulnerab*|xss|"
      "csrf|sql injection|exploit*|phishing|malware|data leak*|leaked|cve|"
      "ddos|brute force|suspicious",
      "Treat it as a possible incident: preserve logs, look for "
      "unauthorised access, rotate exposed credentials, escalate." },
    { "oauth", "oauth*|openid|oidc|sso|saml|google login|"
      "login with google|sign in with google|github login|social login|"
      "redirect uri",
      "Check the OAuth client configuration (client id, secret, redirect "
      "URIs) and the error returned to the callback." },
    { "mobile", "mobile|phone|smartphone|tablet|mobile app|"
      "push notification*",
      "Ask for device model, OS and app version; reproduce on the same "
      "kind of device." },
    { "ios", "ios|iphone|ipad|ipados|swift|xcode|testflight|app store",
      "Reproduce on the reported iOS version; check device logs or crash "
      "reports in App Store Connect." },
    { "android", "android|apk|kotlin|play store|samsung|pixel",
      "Reproduce on the reported Android version; collect `adb logcat` or "
      "the Play Console crash report." },
    { "performance", "performance|slow*|latency|lag|laggy|lagging|"
      "sluggish|takes forever|timeout*|timed out|freez*|hang|hangs|"
      "hanging|high cpu|cpu usage|memory usage|memory leak|load time*",
      "Measure where the time goes (network tab, server timings, slow "
      "query log) and since when it got slower." },
    { "networking", "network*|connection refused|connection reset|"
      "connectivity|firewall|vpn|ip address|packet loss|port|ports|tcp|"
      "ping",
      "Check connectivity step by step (DNS, TCP, TLS) from the user's "
      "network and from the server." },
    { "dns", "dns|domain*|nameserver*|cname|a record|mx record*|"
      "propagat*|nxdomain",
      "Check the records with `dig` against the authoritative nameservers "
      "and any recent DNS change." },
    { "ssl", "ssl|tls|https|certificate*|cert|certs|letsencrypt|"
      "let's encrypt|not secure|err_cert*",
      "Check the certificate chain and expiry (`openssl s_client`) and "
      "the server's TLS configuration." },
    { "python", "python|django|flask|fastapi|pip|pytest|traceback",
      "Get the full traceback and the versions of Python and the packages "
      "involved." },
    { "php", "php|laravel|symfony|wordpress|composer",
      "Check the PHP error log and the PHP and framework versions." },
    { "websocket", "websocket*|socket.io|real-time|realtime|live update*|"
      "live chat",
      "Check the WebSocket in the network tab (handshake, close codes) "
      "and proxy timeouts on the way." },
    { "accessibility", "accessibility|a11y|screen reader*|wcag|aria|"
      "contrast|keyboard navigation",
      "Try the flow with keyboard only and a screen reader; run an "
      "automated audit (Lighthouse, axe)." },
    { "localization", "translation*|translate*|localization|localisation|"
      "i18n|l10n|language*|locale*|time zone*|timezone*",
      "Check the user's locale and time zone settings and the strings "
      "involved." },
    { "file uploads", "upload*|attachment*|file size|too large|413",
      "Check the size limits on the way (client, proxy "
      "`client_max_body_size`, server) and the storage backend." },
    { "import/export", "export*|import*|csv|excel|spreadsheet*",
      "Reproduce with the user's file or export settings and find the "
      "failing row in the job log." },
    { "search", "search bar|search results|search index|elasticsearch|"
      "opensearch|full-text search|full text search",
      "Check that the search index is up to date; reproduce the query "
      "with the same filters." },
    { "accounts", "account|accounts|delete my account|close my account|"
      "gdpr|profile|username|change email|deactivat*",
      "Look up the account (status, role, recent changes) and verify the "
      "user's identity before changing anything." },
};

static const char *const  tt_generic_steps[] = {
    "Reproduce the problem from the description; note the exact steps, "
    "environment and time.",
    "Ask the user for screenshots, exact error messages and when it "
    "started.",
    "Check the application logs around the time the ticket was created.",
};


/*
 * A clean copy of s for offline use: whitespace runs become one space,
 * other control characters go, ends are trimmed; when s is not valid
 * UTF-8 every non-ASCII byte becomes '?' so the result always is.
 */
static char *
tt_clean(const char *s)
{
    ts_jw_t  w;
    size_t   len, i;
    int      ascii_only, space = 0;
    char     c;

    if (s == NULL) {
        s = "";
    }
    len = strlen(s);
    ascii_only = !ts_valid_utf8(s, len);
    ts_jw_init(&w, len + 1);
    for (i = 0; i < len; i++) {
        c = s[i];
        if (isspace((unsigned char) c)) {
            space = w.len > 0;
            continue;
        }
        if ((unsigned char) c < 0x20 || c == 0x7f) {
            continue;
        }
        if (space) {
            TS_JW_LIT(&w, " ");
            space = 0;
        }
        if (ascii_only && (unsigned char) c >= 0x80) {
            c = '?';
        }
        ts_jw_raw(&w, &c, 1);
    }
    return ts_jw_finish(&w, NULL);
}


/*
 * The text keywords are looked for in: title " | " description, ASCII
 * lower-cased, with U+2019 as an ASCII apostrophe (inputs are clean).
 */
static char *
tt_haystack(const char *title, const char *desc, size_t *len)
{
    ts_jw_t      w;
    const char  *parts[2] = { title, desc };
    const char  *p;
    char         c;
    int          k;

    ts_jw_init(&w, strlen(title) + strlen(desc) + 8);
    for (k = 0; k < 2; k++) {
        if (k == 1) {
            TS_JW_LIT(&w, " | ");
        }
        for (p = parts[k]; *p; p++) {
            if (strncmp(p, "\xe2\x80\x99", 3) == 0) {
                c = '\'';
                p += 2;
            } else {
                c = (char) tolower((unsigned char) *p);
            }
            ts_jw_raw(&w, &c, 1);
        }
    }
    return ts_jw_finish(&w, len);
}


/*
 * 1 when one of the two words before hay[at] negates it: "not urgent",
 * "no data loss", "not a security issue", "non-critical".  Punctuation
 * ends the look-back.
 */
static int
tt_negated(const char *hay, size_t at)
{
    static const char *const  neg[] = {
        "not", "no", "non", "never", "without", "isn't", "isnt", "aren't",
        "wasn't", "nothing"
    };
    size_t  end = at, start, i;
    int     words;

    for (words = 0; words < 2; words++) {
        while (end > 0 && (hay[end - 1] == ' ' || hay[end - 1] == '-')) {
            end--;
        }
        start = end;
        while (start > 0 && (tt_word_char((unsigned char) hay[start - 1])
                             || hay[start - 1] == '\''))
        {
            start--;
        }
        if (start == end) {
            return 0;
        }
        for (i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
            if (strlen(neg[i]) == end - start
                && memcmp(hay + start, neg[i], end - start) == 0)
            {
                return 1;
            }
        }
        end = start;
    }
    return 0;
}


/*
 * 1 when keyword kw[0..klen) (see above) occurs in hay on word
 * boundaries, not negated when no_neg.
 */
static int
tt_match_one(const char *hay, size_t hlen, const char *kw, size_t klen,
    int no_neg)
{
    const char  *p = hay, *q;
    size_t       at;
    int          any_end = 0;

    if (klen && kw[klen - 1] == '*') {
        any_end = 1;
        klen--;
    }
    if (klen == 0) {
        return 0;
    }
    while ((q = memmem(p, hlen - (size_t) (p - hay), kw, klen)) != NULL) {
        at = (size_t) (q - hay);
        p = q + 1;
        if (at > 0 && tt_word_char((unsigned char) hay[at - 1])
            && tt_word_char((unsigned char) kw[0]))
        {
            continue;
        }
        if (!any_end && at + klen < hlen
            && tt_word_char((unsigned char) hay[at + klen])
            && tt_word_char((unsigned char) kw[klen - 1]))
        {
            continue;
        }
        if (no_neg && tt_negated(hay, at)) {
            continue;
        }
        return 1;
    }
    return 0;
}


/*
 * The first keyword of list ('|'-separated) found in hay, as a pointer
 * into list with its length (the '*' dropped) in *klen; NULL when none.
 */
static const char *
tt_match_list(const char *hay, size_t hlen, const char *list, size_t *klen,
    int no_neg)
{
    const char  *kw = list, *bar;
    size_t       n;

    while (*kw) {
        bar = strchr(kw, '|');
        n = bar ? (size_t) (bar - kw) : strlen(kw);
        if (tt_match_one(hay, hlen, kw, n, no_neg)) {
            *klen = (n && kw[n - 1] == '*') ? n - 1 : n;
            return kw;
        }
        kw += n + (bar != NULL);
    }
    return NULL;
}


/*
 * Length of the first sentence of s: up to and including a '.', '!' or
 * '?' followed by a space or the end, or all of s.
 */
static size_t
tt_first_sentence(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if ((s[i] == '.' || s[i] == '!' || s[i] == '?')
            && (i + 1 == len || s[i + 1] == ' '))
        {
            return i + 1;
        }
    }
    return len;
}


/* title + ": " + first sentence of desc, at most 300 characters. */
static char *
tt_offline_summary(const char *title, const char *desc)
{
    ts_jw_t  w;
    size_t   tlen = strlen(title), slen, cut;

    slen = tt_first_sentence(desc, strlen(desc));
    ts_jw_init(&w, tlen + slen + 8);
    ts_jw_raw(&w, title, tlen);
    if (tlen && slen) {
        if (strchr(".!?:", title[tlen - 1]) != NULL) {
            TS_JW_LIT(&w, " ");
        } else {
            TS_JW_LIT(&w, ": ");
        }
    }
    ts_jw_raw(&w, desc, slen);
    if (w.len == 0) {
        TS_JW_LIT(&w, "Untitled ticket");
    }
    if (ts_utf8_len(w.buf, w.len) > TS_TRIAGE_OFFLINE_SUMMARY_MAX) {
        /* keep 299 characters and add an ellipsis (1 character) */
        cut = ts_utf8_cut(w.buf, w.len, TS_TRIAGE_OFFLINE_SUMMARY_MAX - 1,
                          w.len);
        while (cut > 0 && w.buf[cut - 1] == ' ') {
            cut--;
        }
        w.len = cut;
        TS_JW_LIT(&w, "\xe2\x80\xa6");
    }
    return ts_jw_finish(&w, NULL);
}


/* The Markdown notes: why this priority, then first steps. */
static char *
tt_offline_notes(const char *priority, const char *kw, size_t klen,
    const json_t *skills, const unsigned char *matched)
{
    ts_jw_t  w;
    size_t   i, n = 0;

    ts_jw_init(&w, 2048);
    TS_JW_LIT(&w, "**Offline triage** (no AI provider was used): "
                  "priority **");
    ts_jw_lit(&w, priority);
    TS_JW_LIT(&w, "**");
    if (kw != NULL) {
        TS_JW_LIT(&w, " because the ticket mentions \"");
        ts_jw_raw(&w, kw, klen);
        TS_JW_LIT(&w, "\".");
    } else {
        TS_JW_LIT(&w, ": no urgent or low-impact keywords found.");
    }
    TS_JW_LIT(&w, "\n\n**Suggested first steps**\n\n");

    if (strcmp(priority, "High") == 0) {
        TS_JW_LIT(&w, "- Acknowledge the ticket quickly and check whether "
                      "other users are affected; escalate if it is an "
                      "outage.\n");
    }
    for (i = 0; i < sizeof(tt_vocabulary) / sizeof(tt_vocabulary[0])
                && n < TT_NOTES_SKILLS; i++)
    {
        if (matched[i]) {
            TS_JW_LIT(&w, "- **");
            ts_jw_lit(&w, tt_vocabulary[i].skill);
            TS_JW_LIT(&w, "**: ");
            ts_jw_lit(&w, tt_vocabulary[i].step);
            TS_JW_LIT(&w, "\n");
            n++;
        }
    }
    if (json_array_size(skills) == 0) {
        for (i = 0; i < sizeof(tt_generic_steps) / sizeof(char *); i++) {
            TS_JW_LIT(&w, "- ");
            ts_jw_lit(&w, tt_generic_steps[i]);
            TS_JW_LIT(&w, "\n");
        }
    }
    if (w.len > 0 && w.buf[w.len - 1] == '\n') {
        w.len--;                    /* notes are trimmed, as replies are */
    }
    return ts_jw_finish(&w, NULL);
}


void
ts_triage_offline(const char *title, const char *description,
    ts_triage_t *out)
{
    enum { NVOCAB = sizeof(tt_vocabulary) / sizeof(tt_vocabulary[0]) };

    ts_triage_t     t = { NULL, NULL, NULL, NULL };
    unsigned char   matched[NVOCAB];
    char           *ti, *de, *hay = NULL;
    const char     *kw;
    size_t          hlen = 0, klen = 0, i;

    memset(out, 0, sizeof(*out));
    ti = tt_clean(title);
    de = tt_clean(description);
    if (ti != NULL && de != NULL) {
        hay = tt_haystack(ti, de, &hlen);
    }
    if (hay == NULL) {
        goto done;
    }

    kw = tt_match_list(hay, hlen, tt_high_keywords, &klen, 1);
    t.priority = "High";
    if (kw == NULL) {
        kw = tt_match_list(hay, hlen, tt_low_keywords, &klen, 0);
        t.priority = kw ? "Low" : "Medium";
    }

    t.related_skills = json_array();
    if (t.related_skills == NULL) {
        goto done;
    }
    for (i = 0; i < NVOCAB; i++) {
        size_t  unused;

        matched[i] = 0;
        if (json_array_size(t.related_skills) < TS_TRIAGE_SKILLS_MAX
            && tt_match_list(hay, hlen, tt_vocabulary[i].keywords, &unused,
                             0) != NULL)
        {
            matched[i] = 1;
            if (json_array_append_new(t.related_skills,
                    json_string(tt_vocabulary[i].skill)) != 0)
            {
                goto done;
            }
        }
    }

    t.summary = tt_offline_summary(ti, de);
    t.helpful_notes = tt_offline_notes(t.priority, kw, klen,
                                       t.related_skills, matched);
    if (t.summary != NULL && t.helpful_notes != NULL) {
        *out = t;
        t.summary = NULL;
        t.helpful_notes = NULL;
        t.related_skills = NULL;
    }

done:
    ts_triage_clear(&t);
    free(hay);
    free(ti);
    free(de);
}
