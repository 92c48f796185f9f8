#!/usr/bin/python3
"""`make demo`: load a realistic demo dataset into the running system.

Talks to the API of the system `make run` started (http://127.0.0.1:$PORT,
PORT defaults to 8080; DEMO_BASE_URL overrides the whole URL), never to the
store directly.  Creates, all with one shared password:

  - the admin (the first signup on a fresh store becomes the admin; on a
    store that already has one, logs in with DEMO_ADMIN_EMAIL /
    DEMO_ADMIN_PASSWORD, by default admin@demo.local / the demo password);
  - 4 moderators with distinct skills (signup + POST /api/auth/update-user);
  - 6 users, ~30 support tickets spread over them, in every status
    (PATCH /api/tickets/:id/status as the admin), comment threads on 10 of
    them (staff opens, the creator replies);
  - 2 pending moderator requests and 1 rejected one.

Re-running on a populated store does not duplicate anything: existing
accounts are logged into, existing tickets (same title) reused, and what
already exists is reported.  Uses well under 200 requests, so the default
rate limit (500 requests / 15 min per address) is not a problem.

Usage: /usr/bin/python3 scripts/demo.py      (or: make demo)
"""
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

DEMO_PASSWORD = "Demo-Passw0rd!"
PORT = os.environ.get("PORT") or "8080"
BASE = (os.environ.get("DEMO_BASE_URL") or "http://127.0.0.1:%s" % PORT).rstrip("/")
ADMIN_EMAIL = os.environ.get("DEMO_ADMIN_EMAIL") or "admin@demo.local"
ADMIN_PASSWORD = os.environ.get("DEMO_ADMIN_PASSWORD") or DEMO_PASSWORD
ADMIN_USERNAME = "admin"

MODERATORS = [
    ("sofia.marin", "sofia.marin@demo.local", ["react", "frontend", "css", "typescript"]),
    ("omar.haddad", "omar.haddad@demo.local", ["node.js", "api", "mongodb", "express"]),
    ("lena.fischer", "lena.fischer@demo.local", ["devops", "docker", "nginx", "linux"]),
    ("raj.iyer", "raj.iyer@demo.local", ["billing", "payments", "stripe", "invoicing"]),
]

USERS = [
    ("emma.wilson", "emma.wilson@demo.local"),
    ("liam.chen", "liam.chen@demo.local"),
    ("noah.garcia", "noah.garcia@demo.local"),
    ("ava.patel", "ava.patel@demo.local"),
    ("mia.johnson", "mia.johnson@demo.local"),
    ("lucas.martin", "lucas.martin@demo.local"),
]

# (applicant, skills, outcome)
MOD_REQUESTS = [
    ("ava.patel", "python, django, data export", "pending"),
    ("mia.johnson", "react, accessibility, css", "pending"),
    ("lucas.martin", "billing, refunds", "rejected"),
]

TODO, DOING, DONE = "To-Do", "In Progress", "Completed"

# (creator, title, description, status, thread); a thread is a list of
# ("staff" | "user", text): staff opens, the creator replies.
TICKETS = [
    ("emma.wilson", "Cannot log in after password reset",
     "I reset my password this morning using the link in the email. The reset "
     "page said it worked, but logging in with the new password always gives "
     "'Invalid credentials'. I tried Chrome and Safari.", DONE,
     [("staff", "Thanks Emma. Could you check whether the email address you log in "
                "with is exactly the one the reset link was sent to? We have seen "
                "a trailing space cause this."),
      ("user", "You were right, my password manager had saved the address with a "
               "space at the end. It works now, thanks!"),
      ("staff", "Great to hear. I have filed a fix so the form trims the address.")]),
    ("emma.wilson", "Two-factor code never arrives by SMS",
     "Since yesterday the SMS with my 2FA code never arrives, so I cannot get "
     "into my account. My number is correct in the profile (ends with 4471).",
     DOING,
     [("staff", "Our SMS provider reports delays for some carriers in your region. "
                "Can you tell us which mobile carrier you use?"),
      ("user", "It is Vodafone. The code from the authenticator app option also "
               "seems to be disabled for me.")]),
    ("emma.wilson", "Dashboard revenue chart stays blank in Firefox",
     "On the dashboard the revenue chart is empty in Firefox 128. The browser "
     "console shows 'TypeError: can't access property \"map\", data is undefined'. "
     "Works fine in Chrome.", TODO, None),
    ("emma.wilson", "Dark mode: text unreadable in date picker",
     "With dark mode on, the days in the date picker are dark grey on black and "
     "almost impossible to read.", TODO, None),
    ("emma.wilson", "Session expires while writing a long ticket",
     "I spent 20 minutes writing a detailed ticket and when I pressed Submit I was "
     "logged out and lost everything.", DONE, None),

    ("liam.chen", "Payment failed: card declined at checkout",
     "Checkout says 'Your card was declined' for our company Visa, but the bank "
     "sees no attempt at all. We need to renew the Pro plan before Friday.", DOING,
     [("staff", "I can see the attempt on our side: the payment was stopped by 3-D "
                "Secure because the challenge window was closed. Could you try again "
                "and keep the bank's pop-up open until it confirms?"),
      ("user", "Tried again with the pop-up open, now it says 'authentication "
               "failed'. Screenshot attached in the email I sent to billing.")]),
    ("liam.chen", "Charged twice for the March invoice",
     "Our credit card statement shows two charges of 249.00 EUR on March 3rd for "
     "invoice INV-2031. Please refund the duplicate.", DONE,
     [("staff", "Sorry about that, Liam. I confirm the duplicate charge and have "
                "issued a refund of 249.00 EUR; it takes 5-10 business days."),
      ("user", "Thank you, I can see the pending refund on the card already.")]),
    ("liam.chen", "Invoice PDF is missing our VAT number",
     "The downloaded invoice PDFs do not show our VAT number (DE 298 443 120) "
     "although it is saved in the billing profile. Our accountant needs it.",
     TODO, None),
    ("liam.chen", "How do I switch from monthly to yearly billing?",
     "We would like to move to yearly billing to get the discount. I cannot find "
     "the option in the billing settings.", DONE, None),
    ("liam.chen", "Refund for cancelled seat not received",
     "We removed two seats on the 2nd and were promised a prorated refund, but "
     "nothing arrived after three weeks.", TODO, None),

    ("noah.garcia", "API returns 500 on POST /v2/orders",
     "Since 09:40 UTC our integration gets HTTP 500 from POST /v2/orders with "
     "body {\"error\":\"internal\"}. GET requests still work. Request id of one "
     "failure: 7f3a91c2.", DOING,
     [("staff", "Thanks for the request id. The error comes from a validation of "
                "the 'shippingAddress.region' field that is now required. Are you "
                "sending it?"),
      ("user", "We are not; it was optional in v1. Adding it fixes the 500, but "
               "shouldn't a missing field be a 400?"),
      ("staff", "Yes, it should. The 500 is a bug on our side and is being fixed; "
                "I will update this ticket when it is deployed.")]),
    ("noah.garcia", "Webhook deliveries delayed by 15 minutes",
     "Order webhooks arrive 10-20 minutes late since Monday. The delivery log in "
     "the dashboard shows several retries with 'timeout' even though our "
     "endpoint answers in under 100 ms.", DOING, None),
    ("noah.garcia", "Rate limit headers missing on 429 responses",
     "When we hit the API rate limit the 429 answer has no Retry-After header, so "
     "our client cannot back off correctly.", DONE,
     [("staff", "Confirmed; the header was dropped by a proxy rule. Fixed in "
                "today's deployment, could you check on your side?"),
      ("user", "Confirmed, Retry-After is there now. Thanks!")]),
    ("noah.garcia", "Pagination returns duplicate items",
     "Listing /v2/products with page=2 and page=3 returns some of the same "
     "products when items are updated meanwhile.", TODO, None),
    ("noah.garcia", "API token shows as expired right after creation",
     "A freshly created API token is rejected with 401 'token expired' for the "
     "first few minutes, then starts working.", DONE, None),

    ("ava.patel", "Export to CSV times out for large reports",
     "Exporting the yearly sales report (about 60 000 rows) to CSV ends with a "
     "504 Gateway Timeout after one minute. Smaller exports work.", DOING,
     [("staff", "Large exports should run in the background. Can you confirm you "
                "are using the Export button on the Reports page, not the table menu?"),
      ("user", "I used the table menu. With the Reports page button I get an "
               "email, but the link in it says 'file not found'.")]),
    ("ava.patel", "Date filter ignores my time zone",
     "When I filter reports for 'yesterday' the numbers include orders from this "
     "morning. My profile time zone is Asia/Kolkata.", TODO, None),
    ("ava.patel", "Scheduled report email not sent on Mondays",
     "The weekly report is scheduled for Monday 08:00 but never arrives on "
     "Mondays; the other days are fine.", TODO, None),
    ("ava.patel", "Typo in the onboarding checklist",
     "Step 3 of the onboarding checklist says 'Conect your store'.", DONE, None),
    ("ava.patel", "Search does not find customers by phone number",
     "Searching for a customer by phone number returns nothing, although the "
     "number is on the customer page.", DOING, None),

    ("mia.johnson", "Docker image fails to start: permission denied",
     "The self-hosted image 4.2.0 exits right away with 'mkdir /var/lib/app/cache: "
     "permission denied' when the data volume is mounted from the host.", DONE,
     [("staff", "Since 4.2.0 the container runs as uid 1000. Please run "
                "'chown -R 1000:1000' on the host folder, or set user: root in "
                "the compose file if you must."),
      ("user", "The chown did it, the container starts now. Maybe mention this in "
               "the upgrade notes?"),
      ("staff", "Good point, the upgrade notes are updated.")]),
    ("mia.johnson", "502 Bad Gateway behind our nginx reverse proxy",
     "After upgrading to 4.2.0 every request through our nginx reverse proxy "
     "gets 502 Bad Gateway. Direct access on port 3000 works.", DOING,
     [("staff", "The app now listens on 127.0.0.1 by default. Set "
                "LISTEN_ADDR=0.0.0.0 in the environment, or point proxy_pass at "
                "the container name."),
      ("user", "Setting LISTEN_ADDR fixed the 502. WebSockets still fail though, "
               "the browser shows 'connection closed before established'.")]),
    ("mia.johnson", "Buttons overlap on mobile checkout page",
     "On an iPhone 13 the 'Back' and 'Pay now' buttons overlap on the checkout "
     "page so 'Pay now' cannot be tapped.", TODO, None),
    ("mia.johnson", "Health check endpoint reports degraded randomly",
     "Our monitoring sees /health answering 'degraded' a few times per hour for "
     "a couple of seconds.", TODO, None),
    ("mia.johnson", "TLS certificate renewal failed on custom domain",
     "Our custom domain support.acme-demo.com shows an expired certificate since "
     "this morning; auto-renewal seems to have failed.", DONE, None),

    ("lucas.martin", "Password reset email never arrives",
     "I requested a password reset three times in the last hour but no email "
     "arrived, not even in spam.", DONE,
     [("staff", "The reset emails to your domain were bounced by your mail "
                "server's spam filter. I have sent you a one-time login link from "
                "our support address instead."),
      ("user", "Got it and I'm in, thanks. I'll ask IT to allow your sender.")]),
    ("lucas.martin", "Account locked after too many login attempts",
     "My account says it is locked after too many attempts, but I only tried "
     "twice. It has been locked for more than an hour now.", DOING, None),
    ("lucas.martin", "Profile picture upload fails with large images",
     "Uploading a 6 MB JPEG as profile picture fails with 'Something went wrong' "
     "and no further detail.", TODO, None),
    ("lucas.martin", "Notification emails are in the wrong language",
     "My language is set to Spanish but notification emails arrive in English.",
     TODO, None),
    ("lucas.martin", "Coupon code rejected as expired",
     "The coupon SPRING25 from your newsletter is rejected as expired, though the "
     "newsletter says it is valid until the end of the month.", TODO, None),
]


class RateLimited(Exception):
    pass


class Client:
    """Tiny JSON client that counts requests and remembers the rate limit."""

    def __init__(self, base):
        self.base = base
        self.requests = 0
        self.remaining = None

    def call(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        self.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, headers, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, e.headers, e.read()
        if headers.get("RateLimit-Remaining") is not None:
            self.remaining = headers.get("RateLimit-Remaining")
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        if status == 429:
            raise RateLimited("%s %s answered 429 (%s); retry after %s s"
                              % (method, path, (doc or {}).get("error", ""),
                                 headers.get("Retry-After", "?")))
        return status, doc


def err(doc):
    return (doc or {}).get("error") or (doc or {}).get("message") or ""


def say(msg=""):
    print(msg, flush=True)


class Demo:
    def __init__(self):
        self.api = Client(BASE)
        self.admin = None                 # {"user", "token"}
        self.accounts = {}                # username -> {"user", "token", "note"}
        self.tickets = {}                 # title -> ticket JSON
        self.created = set()              # titles created in this run
        self.notes = []
        self.modreq = {}                  # username -> what the request is now

    # -- accounts ----------------------------------------------------------
    def login(self, identifier, password):
        s, doc = self.api.call("POST", "/api/auth/login",
                               {"identifier": identifier, "password": password})
        return (doc if s == 200 else None), s, doc

    def setup_admin(self):
        s, doc = self.api.call("POST", "/api/auth/signup",
                               {"username": ADMIN_USERNAME, "email": ADMIN_EMAIL,
                                "password": ADMIN_PASSWORD})
        if s == 200 and doc["user"]["role"] == "admin":
            say("admin      %-14s created (fresh store: the first signup is the admin)"
                % doc["user"]["username"])
            self.admin = doc
            return
        if s == 200:
            say("note: the store already has an admin, so %s was created as a plain "
                "user" % ADMIN_EMAIL)
        elif s != 409:
            sys.exit("signup of the admin answered %d %s" % (s, err(doc)))
        auth, ls, ldoc = self.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        if auth is None:
            sys.exit(
                "\nCannot act as the admin: the store is not fresh (an account named "
                "'%s' or with the email %s exists) and logging in as %s failed: "
                "%d %s.\n"
                "Set DEMO_ADMIN_EMAIL and DEMO_ADMIN_PASSWORD to the email and "
                "password of an admin of this store, e.g.\n"
                "  DEMO_ADMIN_EMAIL=you@example.com DEMO_ADMIN_PASSWORD=... make demo\n"
                "or start from an empty store: stop `make run`, remove "
                "var/tickets.db* and start it again."
                % (ADMIN_USERNAME, ADMIN_EMAIL, ADMIN_EMAIL, ls, err(ldoc)))
        if auth["user"]["role"] != "admin":
            sys.exit(
                "\n%s logged in but has role '%s', not admin: the store's admin is "
                "another account.\nSet DEMO_ADMIN_EMAIL and DEMO_ADMIN_PASSWORD to "
                "that admin's credentials, or start from an empty store (stop "
                "`make run`, remove var/tickets.db*)."
                % (ADMIN_EMAIL, auth["user"]["role"]))
        say("admin      %-14s exists, logged in as %s"
            % (auth["user"]["username"], ADMIN_EMAIL))
        self.admin = auth

    def account(self, username, email, label):
        s, doc = self.api.call("POST", "/api/auth/signup",
                               {"username": username, "email": email,
                                "password": DEMO_PASSWORD})
        if s == 200:
            self.accounts[username] = dict(doc, note="created")
            return self.accounts[username]
        if s != 409:
            self.warn("%s %s: signup answered %d %s" % (label, username, s, err(doc)))
            return None
        auth, ls, ldoc = self.login(email, DEMO_PASSWORD)
        if auth is None:
            self.warn("%s %s: already exists but the demo password does not work "
                      "(%d %s); skipped" % (label, username, ls, err(ldoc)))
            return None
        self.accounts[username] = dict(auth, note="exists")
        return self.accounts[username]

    def setup_moderators(self):
        for username, email, skills in MODERATORS:
            acc = self.account(username, email, "moderator")
            if acc is None:
                continue
            user = acc["user"]
            have = sorted(s.lower() for s in user.get("skills") or [])
            if user["role"] == "moderator" and have == sorted(skills):
                say("moderator  %-14s %s, skills %s"
                    % (username, acc["note"], ", ".join(skills)))
                continue
            if user["role"] == "admin":
                self.warn("moderator %s is an admin in this store; left as is" % username)
                continue
            s, doc = self.api.call("POST", "/api/auth/update-user",
                                   {"email": email, "role": "moderator",
                                    "skills": skills}, self.admin["token"])
            if s != 200:
                self.warn("update-user %s answered %d %s" % (username, s, err(doc)))
                continue
            user["role"], user["skills"] = "moderator", skills
            say("moderator  %-14s %s, promoted, skills %s"
                % (username, acc["note"], ", ".join(skills)))

    def setup_users(self):
        for username, email in USERS:
            acc = self.account(username, email, "user")
            if acc is not None:
                say("user       %-14s %s (role %s)"
                    % (username, acc["note"], acc["user"]["role"]))

    # -- tickets -----------------------------------------------------------
    def load_tickets(self):
        """All tickets the admin sees, by title (newest wins)."""
        found, page, pages = {}, 1, 1
        while page <= pages:
            s, doc = self.api.call("GET", "/api/tickets?page=%d&limit=100" % page,
                                   token=self.admin["token"])
            if s != 200:
                sys.exit("GET /api/tickets answered %d %s%s" % (
                    s, err(doc), " (are the ticket routes built? run `make build` "
                    "and restart `make run`)" if s == 404 else ""))
            for t in doc["tickets"]:
                found.setdefault(t["title"], t)
            pages = doc["pagination"]["pages"]
            self.total_tickets = doc["pagination"]["total"]
            page += 1
        return found

    def create_tickets(self):
        existing = self.load_tickets()
        reused = 0
        for creator, title, desc, _status, _thread in TICKETS:
            if title in existing:
                self.tickets[title] = existing[title]
                reused += 1
                continue
            acc = self.accounts.get(creator)
            if acc is None:
                continue
            s, doc = self.api.call("POST", "/api/tickets",
                                   {"title": title, "description": desc}, acc["token"])
            if s != 201:
                self.warn("ticket %r by %s: %d %s" % (title, creator, s, err(doc)))
                continue
            self.tickets[title] = doc["ticket"]
            self.created.add(title)
        say("tickets    %d created, %d already there" % (len(self.created), reused))

    def staff_for(self, ticket):
        """The assigned demo moderator when we hold their token, else the admin."""
        assignee = (ticket.get("assignedTo") or {}).get("_id")
        for username, _e, _s in MODERATORS:
            acc = self.accounts.get(username)
            if acc and acc["user"]["_id"] == assignee:
                return username, acc["token"]
        return self.admin["user"]["username"], self.admin["token"]

    def add_threads(self):
        if self.created:
            # pick up assignments the daemon may have made meanwhile
            fresh = self.load_tickets()
            for title in self.tickets:
                if title in fresh:
                    self.tickets[title] = fresh[title]
        threads = skipped = 0
        for creator, title, _d, _s, thread in TICKETS:
            ticket = self.tickets.get(title)
            if not thread or ticket is None or creator not in self.accounts:
                continue
            tid = ticket["_id"]
            if title not in self.created:
                s, doc = self.api.call("GET", "/api/tickets/%s/comments" % tid,
                                       token=self.admin["token"])
                if s == 200 and doc["comments"]:
                    skipped += 1
                    continue
            staff_name, staff_token = self.staff_for(ticket)
            for who, text in thread:
                token = staff_token if who == "staff" else self.accounts[creator]["token"]
                s, doc = self.api.call("POST", "/api/tickets/%s/comments" % tid,
                                       {"text": text}, token)
                if s == 403 and who == "staff" and staff_token != self.admin["token"]:
                    staff_name, staff_token = (self.admin["user"]["username"],
                                               self.admin["token"])
                    s, doc = self.api.call("POST", "/api/tickets/%s/comments" % tid,
                                           {"text": text}, staff_token)
                if s != 200:
                    self.warn("comment on %r by %s: %d %s"
                              % (title, staff_name if who == "staff" else creator,
                                 s, err(doc)))
                    break
            else:
                threads += 1
        say("comments   %d threads written, %d already there" % (threads, skipped))

    def set_statuses(self):
        changed = same = 0
        for _c, title, _d, target, _t in TICKETS:
            ticket = self.tickets.get(title)
            if ticket is None:
                continue
            current = ticket["status"]
            if current == target:
                same += 1
                continue
            path = [target]
            if target == DONE and current == TODO:
                path = [DOING, DONE]          # the way a ticket really goes
            for status in path:
                s, doc = self.api.call("PATCH", "/api/tickets/%s/status" % ticket["_id"],
                                       {"status": status}, self.admin["token"])
                if s != 200:
                    self.warn("status %s on %r: %d %s" % (status, title, s, err(doc)))
                    break
                ticket.update(doc["ticket"])
            else:
                changed += 1
        say("statuses   %d tickets moved, %d already in their status" % (changed, same))

    # -- moderator requests -------------------------------------------------
    def mod_requests(self):
        for username, skills, outcome in MOD_REQUESTS:
            acc = self.accounts.get(username)
            if acc is None:
                continue
            token = acc["token"]
            s, doc = self.api.call("GET", "/api/mod-requests/me", token=token)
            if s != 200:
                self.warn("GET /api/mod-requests/me as %s: %d %s" % (username, s, err(doc)))
                continue
            req, cooldown = doc.get("request"), doc.get("cooldownHours") or 0
            state = req["status"] if req else None
            if state == "accepted" or acc["user"]["role"] != "user":
                say("mod-req    %-14s already processed (%s, role %s)"
                    % (username, state, acc["user"]["role"]))
                self.modreq[username] = state or "none, role %s" % acc["user"]["role"]
                continue
            if state == "rejected" and (outcome == "rejected" or cooldown > 0):
                say("mod-req    %-14s rejected (cooldown %s h left)" % (username, cooldown))
                self.modreq[username] = "rejected"
                continue
            if state != "pending":
                s, doc = self.api.call("POST", "/api/mod-requests", {"skills": skills}, token)
                if s != 201:
                    self.warn("mod request by %s: %d %s" % (username, s, err(doc)))
                    continue
                req, note = doc["request"], "submitted"
            else:
                note = "already pending"
            if outcome == "rejected":
                s, doc = self.api.call("POST", "/api/mod-requests/%s/decide" % req["_id"],
                                       {"action": "reject"}, self.admin["token"])
                if s != 200:
                    self.warn("rejecting %s's request: %d %s" % (username, s, err(doc)))
                    continue
                note += ", rejected by the admin"
            self.modreq[username] = outcome
            say("mod-req    %-14s %s (skills: %s)" % (username, note, skills))

    def warn(self, msg):
        self.notes.append(msg)
        say("WARNING: " + msg)

    # -- summary ------------------------------------------------------------
    def summary(self):
        by_status = {TODO: 0, DOING: 0, DONE: 0}
        for t in self.tickets.values():
            by_status[t["status"]] = by_status.get(t["status"], 0) + 1
        per_user = {}
        for creator, title, *_ in TICKETS:
            if title in self.tickets:
                per_user[creator] = per_user.get(creator, 0) + 1
        with_comments = sum(1 for c, title, _d, _s, th in TICKETS
                            if th and title in self.tickets)
        say()
        say("Demo data at %s" % BASE)
        say("  password of every demo account: %s" % DEMO_PASSWORD)
        if ADMIN_PASSWORD != DEMO_PASSWORD:
            say("  (the admin uses DEMO_ADMIN_PASSWORD)")
        say()
        say("  %-10s %-14s %-26s %s" % ("role", "username", "email", "skills / tickets"))
        u = self.admin["user"]
        say("  %-10s %-14s %-26s" % ("admin", u["username"], u["email"]))
        for username, email, skills in MODERATORS:
            acc = self.accounts.get(username)
            if acc:
                say("  %-10s %-14s %-26s %s" % (acc["user"]["role"], username, email,
                                                ", ".join(skills)))
        for username, email in USERS:
            acc = self.accounts.get(username)
            if acc:
                extra = (", moderator request %s" % self.modreq[username]
                         if username in self.modreq else "")
                say("  %-10s %-14s %-26s %d tickets%s"
                    % (acc["user"]["role"], username, email,
                       per_user.get(username, 0), extra))
        say()
        say("  tickets: %d demo tickets (%d To-Do, %d In Progress, %d Completed), "
            "%d with a comment thread; %d tickets in the store"
            % (len(self.tickets), by_status[TODO], by_status[DOING], by_status[DONE],
               with_comments, max(getattr(self, "total_tickets", 0),
                                  len(self.tickets))))
        states = list(self.modreq.values())
        say("  moderator requests: %d pending, %d rejected (admin: GET /api/mod-requests)"
            % (states.count("pending"), states.count("rejected")))
        say("  assignment to moderators is the daemon's job; statuses were set by "
            "the admin")
        say()
        say("  try: curl -s %s/api/auth/login -H 'Content-Type: application/json' \\"
            % BASE)
        say("         -d '{\"identifier\":\"emma.wilson\",\"password\":\"%s\"}'"
            % DEMO_PASSWORD)
        say("  %d API requests made (rate limit remaining in this window: %s)"
            % (self.api.requests, self.api.remaining or "?"))
        if self.notes:
            say("  %d warning(s), see above" % len(self.notes))

    def run(self):
        try:
            s, doc = self.api.call("GET", "/api/health")
        except (urllib.error.URLError, OSError) as e:
            sys.exit("Cannot reach %s (%s).\nStart the system first with `make run` "
                     "(or `PORT=%s make run`), then run `make demo` in another "
                     "terminal with the same PORT." % (BASE, getattr(e, "reason", e), PORT))
        if s != 200:
            sys.exit("%s/api/health answered %d; is this the ticket assistant?" % (BASE, s))
        say("Loading demo data into %s (store: %s)" % (BASE, (doc or {}).get("store", "?")))
        self.setup_admin()
        self.setup_moderators()
        self.setup_users()
        self.create_tickets()
        self.add_threads()
        self.set_statuses()
        self.mod_requests()
        self.summary()
        return 0


def main():
    demo = Demo()
    try:
        return demo.run()
    except RateLimited as e:
        sys.exit("\nStopped: the rate limit was reached: %s.\nThe data loaded so far "
                 "stays; run `make demo` again after the window resets (or start "
                 "`make run` with a higher RATE_LIMIT)." % e)


if __name__ == "__main__":
    sys.exit(main())
