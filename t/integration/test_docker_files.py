"""docker/ checked with what runs here (no Docker engine on these
machines): the compose file's topology, the balancer's nginx config and a
node's config as the entrypoint renders it pass `nginx -t` (the node's
with this module, a MongoDB store and Redis), the entrypoint parses, and
every file the Dockerfile copies exists.  The two-node behaviour itself is
tested without Docker in test_cache.py (two nginx+ticketd pairs sharing a
store and Redis) and test_redis_bridge.py."""
import os
import re
import subprocess

import yaml

from conftest import NGINX, REPO, free_port, nginx_test
from test_config import wrap_snippet

DOCKER = REPO / "docker"


def compose():
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_has_two_nodes_behind_a_balancer_sharing_store_and_redis():
    services = compose()["services"]
    node1, node2 = services["node1"], services["node2"]
    assert node1 == node2, "the nodes differ"
    env = node1["environment"]
    store = env["TICKET_STORE"]
    assert store.startswith("mongodb://") and "replicaSet=rs0" in store
    for member in ("mongo1", "mongo2", "mongo3"):
        assert member + ":27017" in store
        assert "--replSet" in services[member]["command"]
        assert "rs0" in services[member]["command"]
    assert env["TICKET_REDIS"] == "redis://redis:6379/0"
    assert "redis" in services
    assert "JWT_SECRET" in env, "the nodes must share one secret"
    assert node1["depends_on"]["mongo-init"]["condition"] == \
        "service_completed_successfully"
    assert "rs.initiate" in " ".join(services["mongo-init"]["command"])

    lb = services["lb"]
    assert any(str(p).endswith(":80") for p in lb["ports"])
    assert any("lb.conf" in v for v in lb["volumes"])
    build = node1["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).exists()


def test_balancer_conf_passes_nginx_t(tmp_path):
    """docker/lb.conf with the node host names pointed at local ports."""
    (tmp_path / "logs").mkdir()
    text = (DOCKER / "lb.conf").read_text()
    text = re.sub(r"\bnode[12]:8080", "127.0.0.1:%d" % free_port(), text)
    text = text.replace("listen 80;", "listen 127.0.0.1:%d;" % free_port())
    conf = tmp_path / "nginx.conf"
    conf.write_text("\n".join([
        "pid %s/nginx.pid;" % tmp_path,
        "error_log %s/logs/error.log;" % tmp_path,
        "events { worker_connections 64; }",
        "http {",
        "    access_log off;",
        "    proxy_temp_path %s/proxy;" % tmp_path,
        "    client_body_temp_path %s/body;" % tmp_path,
        text,
        "}",
    ]))
    r = nginx_test(tmp_path, conf)
    assert r.returncode == 0, r.stderr
    assert "upstream ticket_nodes" in text and "$connection_upgrade" in text


def test_node_conf_rendered_by_the_entrypoint_passes_nginx_t(tmp_path):
    """The entrypoint's rendering of conf.d/ticket.conf for a node of the
    compose topology: MongoDB replica set store, Redis cache."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "tmp").mkdir()
    rendered = tmp_path / "ticket.conf"
    env = dict(os.environ,
               ENTRYPOINT_RENDER_ONLY="1",
               TICKET_CONF_IN=str(REPO / "conf.d" / "ticket.conf"),
               TICKET_CONF=str(rendered),
               TICKET_STORE=compose()["services"]["node1"]["environment"]
               ["TICKET_STORE"],
               TICKET_REDIS="redis://redis:6379/0")
    r = subprocess.run(["sh", str(DOCKER / "entrypoint.sh")], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    text = rendered.read_text()
    assert "ticket_store            mongodb://mongo1:27017," in text
    assert "ticket_redis            redis://redis:6379/0;" in text
    wrapped, _ = wrap_snippet(text, tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(wrapped)
    r = nginx_test(tmp_path, conf)
    assert r.returncode == 0, r.stderr + "\n" + wrapped


def test_entrypoint_parses_and_dockerfile_copies_only_what_exists():
    r = subprocess.run(["sh", "-n", str(DOCKER / "entrypoint.sh")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+(?: AS (\w+))?", text, re.M)
    assert stages[:2] == ["web", "build"] and len(stages) == 3
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        for src in line.split()[:-1]:
            assert (REPO / src).exists(), "Dockerfile copies missing %s" % src
    # the node ships what the module and ticketd link at run time
    for lib in ("libmongoc-1.0-0", "libhiredis0.14", "libjwt0", "libuv1"):
        assert lib in text
    assert os.access(NGINX, os.X_OK)
