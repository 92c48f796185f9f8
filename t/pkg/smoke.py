#!/usr/bin/python3
"""API smoke test of an installed system (t/pkg/test_install.sh).

    smoke.py URL --ticketd-pid PID --nginx-conf FILE

Drives the nginx + module + ticketd the packages installed, as a client
would: health with ticketd linked, signup (the first account is the
admin), login, a ticket that ticketd triages (offline) and assigns, the
lists, a conversation, logout, the web UI; then reloads nginx and sends
ticketd SIGHUP (the logrotate path) and checks both still serve.  Waits
poll with a deadline; nothing asserts on time.  Exit 0 when all passed.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import requests


class Failed(Exception):
    pass


def expect(cond, what, r=None):
    if not cond:
        extra = ""
        if r is not None:
            extra = " (HTTP %s: %s)" % (r.status_code, r.text[:300])
        raise Failed(what + extra)
    print("ok   " + what)


def poll(fn, deadline_s, what):
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    raise Failed("%s: still not so after %ss (last: %r)" % (what, deadline_s, last))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--ticketd-pid", type=int, required=True)
    ap.add_argument("--nginx-conf", required=True)
    a = ap.parse_args()
    base = a.url.rstrip("/")
    s = requests.Session()

    def api(method, path, token=None, **kw):
        h = kw.pop("headers", {})
        if token:
            h["Authorization"] = "Bearer " + token
        return s.request(method, base + path, headers=h, timeout=10, **kw)

    def linked():
        r = api("GET", "/api/health")
        return r.status_code == 200 and r.json().get("daemon") == "connected"

    poll(linked, 30, "health says ticketd is connected")
    r = api("GET", "/api/health")
    expect(r.json().get("backend") == "sqlite", "the store is the site's SQLite file", r)

    tag = uuid.uuid4().hex[:8]
    r = api("POST", "/api/auth/signup", json={
        "username": "admin_" + tag, "email": "admin_%s@example.com" % tag,
        "password": "Admin-Passw0rd!"})
    expect(r.status_code == 200 and r.json()["user"]["role"] == "admin",
           "the first signup is the admin", r)
    admin = r.json()["token"]

    r = api("POST", "/api/auth/signup", json={
        "username": "user_" + tag, "email": "user_%s@example.com" % tag,
        "password": "User-Passw0rd!"})
    expect(r.status_code == 200 and r.json()["user"]["role"] == "user",
           "a second signup is a user", r)
    r = api("POST", "/api/auth/login", json={
        "identifier": "user_" + tag, "password": "User-Passw0rd!"})
    expect(r.status_code == 200 and r.json().get("token"), "the user logs in", r)
    user = r.json()["token"]
    r = api("POST", "/api/auth/login", json={
        "identifier": "user_" + tag, "password": "wrong password"})
    expect(r.status_code == 401, "a wrong password is refused with 401", r)

    r = api("POST", "/api/tickets", token=user, json={
        "title": "Cannot log in after password reset",
        "description": "The login page says invalid credentials since this "
                       "morning's reset; urgent, payroll is due."})
    expect(r.status_code == 201, "the user files a ticket", r)
    tid = r.json()["ticket"]["_id"]

    def handled():
        t = api("GET", "/api/tickets/" + tid, token=admin).json()["ticket"]
        return t if t.get("triage") and t.get("assignedTo") else None

    t = poll(handled, 60, "ticketd triaged and assigned the ticket")
    expect(t["triage"]["provider"] == "offline" and t["priority"] in ("Low", "Medium", "High"),
           "triaged by the offline triage (priority %s)" % t["priority"])
    expect(t["assignedTo"]["username"] == "admin_" + tag and t["status"] == "In Progress",
           "assigned to the only staff member, In Progress")

    r = api("GET", "/api/tickets", token=user)
    expect(r.status_code == 200 and r.json()["pagination"]["total"] == 1
           and r.json()["tickets"][0]["_id"] == tid, "the user's list holds the ticket", r)
    expect("triage" not in r.json()["tickets"][0], "the user does not see the triage provenance")

    r = api("POST", "/api/tickets/%s/comments" % tid, token=admin,
            json={"text": "Reset again from the admin page, please retry."})
    expect(r.status_code == 200, "the assigned admin comments", r)
    r = api("POST", "/api/tickets/%s/comments" % tid, token=user,
            json={"text": "Works now, thank you."})
    expect(r.status_code == 200 and len(r.json()["comments"]) == 2,
           "the user replies; two comments", r)
    r = api("PATCH", "/api/tickets/%s/status" % tid, token=admin,
            json={"status": "Completed"})
    expect(r.status_code == 200 and r.json()["ticket"]["status"] == "Completed",
           "the admin completes it", r)

    r = api("GET", "/api/analytics", token=admin)
    expect(r.status_code == 200 and r.json()["totals"]["tickets"] == 1,
           "analytics count the ticket", r)
    r = api("GET", "/api/analytics", token=user)
    expect(r.status_code == 403, "analytics are the admin's", r)

    r = s.get(base + "/", timeout=10)
    expect(r.status_code == 200 and "text/html" in r.headers.get("Content-Type", ""),
           "the web UI's index.html is served from /usr/share/ticket/web", r)
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', r.text)
    expect(assets, "index.html names its assets")
    r = s.get(base + assets[0], timeout=10)
    expect(r.status_code == 200 and "immutable" in r.headers.get("Cache-Control", ""),
           "an asset is served, cached as immutable", r)
    r = s.get(base + "/tickets/" + tid, timeout=10)
    expect(r.status_code == 200 and "text/html" in r.headers.get("Content-Type", ""),
           "a client-side route falls back to index.html", r)

    r = api("POST", "/api/auth/logout", token=user)
    expect(r.status_code == 200, "the user logs out", r)
    r = api("GET", "/api/tickets", token=user)
    expect(r.status_code == 401, "the logged-out token is refused", r)

    # reload nginx (new workers link to ticketd again) and SIGHUP ticketd
    subprocess.run(["/usr/sbin/nginx", "-c", a.nginx_conf, "-s", "reload"], check=True)
    os.kill(a.ticketd_pid, signal.SIGHUP)
    poll(linked, 30, "after nginx -s reload and SIGHUP to ticketd, health is linked again")
    # running, not a zombie (os.kill(pid, 0) succeeds on one)
    with open("/proc/%d/stat" % a.ticketd_pid) as f:
        state = f.read().rsplit(")", 1)[1].split()[0]
    expect(state != "Z", "ticketd still runs after SIGHUP (state %s)" % state)
    r = api("GET", "/api/tickets/" + tid, token=admin)
    expect(r.status_code == 200 and len(r.json()["ticket"]["comments"]) == 2,
           "the ticket reads back after the reload", r)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print("FAIL " + str(e))
        sys.exit(1)
