"""nginx.conf is the one configuration (issue 14, DESIGN §7): ticketd -c
reads the file nginx reads (includes followed), -t checks it and prints
the settings with secrets masked, a bad value is refused with file:line by
ticketd -t as by nginx -t, and a worker whose store or secret differ from
ticketd's is refused, loudly, on both sides.  The settings written from the
environment (as `make run` writes them) reach the mail."""
import json
import re
import subprocess

import pytest

from conftest import TICKETD, nginx_test, poll, render_conf, unique_name
from test_jobs import assigned, outbox_mails, wait_ticket

AI_KEY = "sk-test-KEEPTHISOUTOFTHELOGS-1234567890"
SG_KEY = "SG.test-ANDTHISONETOO-0987654321"


def ticketd_t(conf, *flags):
    return subprocess.run([str(TICKETD), "-t", "-c", str(conf)] + list(flags),
                          capture_output=True, text=True, timeout=30)


class Conf:
    """A rendered nginx.conf in a prefix of its own, with its secret."""

    def __init__(self, tmp_path, **env):
        self.prefix = tmp_path
        (tmp_path / "logs").mkdir(parents=True, exist_ok=True)
        (tmp_path / "tmp").mkdir(exist_ok=True)
        self.secret_text = "s3cr3t-" + "x" * 40
        self.secret = tmp_path / "jwt.secret"
        self.secret.write_text(self.secret_text + "\n")
        self.path = tmp_path / "nginx.conf"
        self.text = render_conf(tmp_path, 18080, tmp_path / "t.db",
                                self.secret, tmp_path / "d.sock", env)
        self.path.write_text(self.text)

    def with_line(self, line):
        """The file with line added in the http block; its line number."""
        lines = self.text.split("\n")
        at = next(i for i, l in enumerate(lines)
                  if l.strip().startswith("ticket_daemon ")) + 1
        lines.insert(at, "    " + line)
        self.path.write_text("\n".join(lines))
        return at + 1


def key(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def test_t_prints_the_settings_of_the_rendered_conf_secrets_masked(tmp_path):
    conf = Conf(tmp_path,
                MAIL_FROM='Help "Desk" <help@example.org>',
                MAIL_REPLY_TO="support@example.org",
                PUBLIC_URL="https://tickets.example.org",
                TRIAGE_PROVIDER="openai", AI_MODEL="llama3",
                AI_URL="http://127.0.0.1:11434",
                AI_KEY_FILE=key(tmp_path, "ai.key", AI_KEY),
                SENDGRID_KEY_FILE=key(tmp_path, "sg.key", SG_KEY),
                ASSIGN_WEIGHTS="skill=0.6 availability=0.3 performance=0.1",
                ASSIGN_CAPACITY="7", PRESENCE_GRACE="2s",
                JOB_RETENTION="off")
    r = nginx_test(conf.prefix, conf.path)
    assert r.returncode == 0, r.stderr
    r = ticketd_t(conf.path)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr
    shown = dict(re.findall(r"^  (\S.*?)  +(.*)$", r.stdout, re.M))
    assert shown["store"] == str(tmp_path / "t.db"), shown
    assert shown["socket"] == str(tmp_path / "d.sock"), shown
    assert shown["mail from"] == 'Help "Desk" <help@example.org>', shown
    assert shown["mail reply-to"] == "support@example.org", shown
    assert shown["public url"] == "https://tickets.example.org", shown
    assert shown["ai provider"] == "openai" and shown["ai model"] == "llama3"
    # a SendGrid key and no transport named: SendGrid
    assert shown["mail transport"] == "sendgrid", shown
    assert shown["assign weights"] == \
        "skill=0.6 availability=0.3 performance=0.1", shown
    assert shown["assign capacity"] == "7", shown
    assert shown["presence grace"] == "2000 ms", shown
    assert shown["job retention"] == "0 s", shown
    assert shown["ai key"] == "(set, %d bytes)" % len(AI_KEY), shown
    assert shown["sendgrid key"] == "(set, %d bytes)" % len(SG_KEY), shown
    assert shown["jwt secret"] == \
        "(set, %d bytes)" % len(conf.secret_text), shown
    for secret in (AI_KEY, SG_KEY, conf.secret_text):
        assert secret not in r.stdout + r.stderr


def test_t_follows_includes_and_flags_override_the_file(tmp_path):
    conf = Conf(tmp_path)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "mail.conf").write_text(
        "ticket_mail_from 'Desk <desk@example.org>';\n")
    conf.with_line("include conf.d/*.conf;")          # relative: conf dir
    r = ticketd_t(conf.path)
    assert r.returncode == 0, r.stderr
    assert "Desk <desk@example.org>" in r.stdout
    r = ticketd_t(conf.path, "--mail-from", "Other <o@example.org>")
    assert r.returncode == 0, r.stderr
    assert "Other <o@example.org>" in r.stdout
    assert "Desk <desk@example.org>" not in r.stdout


@pytest.mark.parametrize("line, bad, directive", [
    ("ticket_ai_provider chatgpt;", "chatgpt", "ticket_ai_provider"),
    ("ticket_mail_from nobody;", "nobody", "ticket_mail_from"),
    ("ticket_mail_reply_to 'A <b>';", "A <b>", "ticket_mail_reply_to"),
    ("ticket_public_url ftp://x.org;", "ftp://x.org", "ticket_public_url"),
    ("ticket_smtp_url http://x.org;", "http://x.org", "ticket_smtp_url"),
    ("ticket_assign_weights skill=lots;", "skill=lots",
     "ticket_assign_weights"),
    ("ticket_assign_tie_window 1.5;", "1.5", "ticket_assign_tie_window"),
    ("ticket_ai_timeout 2h;", "2h", "ticket_ai_timeout"),
    ("ticket_jobs many;", "many", "ticket_jobs"),
    ("ticket_job_retention forever;", "forever", "ticket_job_retention"),
    ("ticket_assign_absence 0s;", "0s", "ticket_assign_absence"),
    ("ticket_presence_grace 500ms5s;", "500ms5s", "ticket_presence_grace"),
])
def test_a_bad_value_fails_ticketd_t_and_nginx_t_with_file_and_line(
        tmp_path, line, bad, directive):
    conf = Conf(tmp_path)
    at = conf.with_line(line)
    r = ticketd_t(conf.path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'invalid value "%s" in "%s"' % (bad, directive) in r.stderr, \
        r.stderr
    assert "in %s:%d\n" % (conf.path, at) in r.stderr, r.stderr
    assert "configuration file %s test failed" % conf.path in r.stderr
    assert r.stdout == ""                # nothing printed as if good
    r = nginx_test(conf.prefix, conf.path)
    assert r.returncode != 0, r.stderr
    # nginx names the directive or the value, and the same line
    assert directive in r.stderr or '"%s"' % bad in r.stderr, r.stderr
    assert "%s:%d\n" % (conf.path, at) in r.stderr, r.stderr


def test_unreadable_files_and_missing_settings_fail_t(tmp_path):
    conf = Conf(tmp_path)
    conf.secret.unlink()
    r = ticketd_t(conf.path)
    assert r.returncode == 1
    assert "cannot read %s" % conf.secret in r.stderr, r.stderr
    assert "test failed" in r.stderr

    conf = Conf(tmp_path / "b")
    conf.path.write_text(conf.text.replace(
        "ticket_daemon unix:", "# ticket_daemon unix:"))
    r = ticketd_t(conf.path)
    assert r.returncode == 1
    assert 'no "ticket_daemon unix:PATH"' in r.stderr, r.stderr

    conf.path.write_text(conf.text + "\n}\n")
    r = ticketd_t(conf.path)
    assert r.returncode == 1
    assert 'unexpected "}" in %s:' % conf.path in r.stderr, r.stderr

    r = ticketd_t(tmp_path / "nope.conf")
    assert r.returncode == 1
    assert "No such file" in r.stderr, r.stderr


REFUSED = "refused nginx worker"


def refusals(st, what):
    return [l for l in st.daemon_log().splitlines()
            if REFUSED in l and what in l]


def health_daemon_states(st):
    return {json.loads(body)["daemon"] for _, (status, _, body)
            in st.each_worker("GET", "/api/health").items()}


@pytest.mark.parametrize("what, flag", [
    ("ticket_store", "--store sqlite:{dir}/other.db"),
    ("ticket_jwt_secret_file", "--jwt-secret-file {dir}/other.secret"),
])
def test_a_worker_of_another_configuration_is_refused_loudly(
        make_stack, tmp_path, what, flag):
    (tmp_path / "other.secret").write_text("another-secret-" + "y" * 40)
    st = make_stack(TICKETD_ARGS="--jobs 0 " + flag.format(dir=tmp_path))
    assert poll(lambda: len(refusals(st, what)) >= 2, 10), st.daemon_log()
    # only the part that differs is named
    other = "ticket_store" if what != "ticket_store" else "secret"
    assert not refusals(st, other), st.daemon_log()
    assert "hello from nginx worker" not in st.daemon_log()
    # the worker says so in error.log, at error level
    assert poll(lambda: [l for l in st.error_log().splitlines()
                         if "[error]" in l
                         and "ticketd refused this worker" in l
                         and what in l], 10), st.error_log()
    # REST still works without the daemon, which never counts as linked
    assert "connected" not in health_daemon_states(st)


def test_matching_configuration_is_linked(make_stack):
    st = make_stack()
    assert poll(lambda: st.daemon_log().count("hello from nginx worker")
                >= 2, 5), st.daemon_log()
    assert REFUSED not in st.daemon_log()


def test_settings_from_the_environment_reach_the_mail(make_stack, tmp_path):
    """As `make run` starts it: the settings are environment variables
    written into nginx.conf by nginx-conf.sh, ticketd gets only -c (and the
    harness's --log/--pidfile)."""
    outbox = tmp_path / "outbox"
    st = make_stack(TICKETD_ARGS="", JOBS="8", OUTBOX=str(outbox),
                    MAIL_TRANSPORT="outbox", TRIAGE_PROVIDER="offline",
                    MAIL_FROM="Acme Help <help@acme.example>",
                    MAIL_REPLY_TO="Acme Support <support@acme.example>",
                    PUBLIC_URL="https://help.acme.example/")
    admin, admin_token = st.signup(username=unique_name("admin"))
    user, token = st.signup()
    r = st.post("/api/tickets", token=token,
                json={"title": "Printer on fire", "description": "Help"})
    assert r.status_code == 201, r.text
    tid = r.json()["ticket"]["_id"]
    wait_ticket(st, tid, assigned)            # the only staff: the admin

    def assigned_mail():
        return [m for m in outbox_mails(outbox).values()
                if str(m["Subject"]).startswith("Ticket Assigned")]
    mails = poll(assigned_mail, 10)
    assert len(mails) == 1, sorted(outbox_mails(outbox))
    m = mails[0]
    assert str(m["From"]) == "Acme Help <help@acme.example>", m["From"]
    assert str(m["Reply-To"]) == "Acme Support <support@acme.example>"
    assert str(m["To"]).endswith("<%s>" % admin["email"]), m["To"]
    assert "https://help.acme.example/tickets/%s" % tid in m.get_content()
    welcome = [m for m in outbox_mails(outbox).values()
               if user["email"] in str(m["To"])
               and str(m["Subject"]).startswith("Welcome")]
    assert welcome and "https://help.acme.example/" in \
        welcome[0].get_content()
