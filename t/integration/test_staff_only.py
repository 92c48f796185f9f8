"""Staff-only by default (DESIGN §7): the triage provenance -- which
provider, which model, whether it was a fallback and the provider's own
error text -- is for staff, and so are the triage's helpfulNotes (issue
15).  A plain user reading their ticket (one, the list, the creation
answer) sees the conversation and the outcome (summary, priority,
relatedSkills) but no `helpfulNotes`, no `triage` and no `assignment`; the
moderator and admins see them."""

import pytest

from test_jobs import assigned, wait_ticket
from test_jobs_ai import GeminiFake, new_ticket, provider_stack


@pytest.fixture
def gemini():
    with GeminiFake() as fake:
        yield fake


def test_provider_error_and_triage_provenance_are_staff_only(
        make_stack, tmp_path, gemini):
    # the provider refuses the key: offline fallback, the error is kept
    st = provider_stack(make_stack, tmp_path, "gemini", gemini,
                        "not-the-key")
    tid = new_ticket(st)
    row = wait_ticket(st, tid, assigned, what="fallback and assignment")
    assert "403" in row["triage"]["error"], row["triage"]

    # the requester: outcome yes, provenance no (one ticket and the list)
    r = st.get("/api/tickets/" + tid, token=st.creator_token)
    assert r.status_code == 200, r.text
    mine = r.json()["ticket"]
    assert "triage" not in mine and "assignment" not in mine, mine
    assert mine["summary"] and mine["priority"], mine
    assert "helpfulNotes" not in mine and "relatedSkills" in mine, mine
    assert "not-the-key" not in r.text and "403" not in r.text, r.text
    r = st.get("/api/tickets", token=st.creator_token)
    assert r.status_code == 200, r.text
    [listed] = r.json()["tickets"]
    assert listed["_id"] == tid and "triage" not in listed, listed
    assert "helpfulNotes" not in listed, listed
    # a new ticket's answer holds no provenance either
    created = st.create_ticket(st.creator_token)
    assert "triage" not in created and "assignment" not in created, created

    # staff: the admin and the assigned moderator see where it came from
    staff = [st.admin_token]
    if row["assignedTo"] == st.moderator["_id"]:
        staff.append(st.login(st.moderator["username"])[1])
    for token in staff:
        one = st.get("/api/tickets/" + tid, token=token).json()["ticket"]
        assert one["triage"]["provider"] == "offline", one
        assert "403" in one["triage"]["error"], one["triage"]
        assert "assignment" in one and one["helpfulNotes"], one
        page = st.get("/api/tickets?limit=100", token=token).json()
        listed = [t for t in page["tickets"] if t["_id"] == tid]
        assert listed and "403" in listed[0]["triage"]["error"], listed
