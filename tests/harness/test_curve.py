"""CURVE security (contract section 6): certificates from `cartmq keygen`,
a broker that only serves clients and workers whose public certificate is
in --curve-clients."""

import shutil

import pytest
import zmq.auth

from mdp import MdpClient
from support import bound, sample, unpack, wait_until


@pytest.fixture
def certs(tmp_path, run_cli):
    """server, worker, client and stranger certificates; clients/ holds the
    public certificates of worker and client only."""
    for name in ("server", "worker", "client", "stranger"):
        result = run_cli(None, "keygen", name, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    allowed = tmp_path / "clients"
    allowed.mkdir()
    for name in ("worker", "client"):
        shutil.copy(tmp_path / name, allowed / (name + ".cert"))
    return tmp_path


def curve_keys(certs, name):
    public, secret = zmq.auth.load_certificate(certs / (name + "_secret"))
    server, _ = zmq.auth.load_certificate(certs / "server")
    return public, secret, server


def cart_workers(endpoint, certs, name="client", timeout=0.5):
    """Workers listed for cart by mmi.services, asked as a CURVE client;
    None if no reply came."""
    with MdpClient(endpoint, timeout=timeout, curve=curve_keys(certs, name)) as client:
        reply = client.request("mmi.services", b"")
    if reply is None:
        return None
    listing = {entry["name"]: entry for entry in unpack(reply[0])}
    return listing.get("cart", {}).get("workers", 0)


@pytest.fixture
def secure_broker(certs, start_broker):
    return start_broker("--curve-secret", certs / "server_secret",
                        "--curve-clients", certs / "clients")


def start_secure_worker(start_worker, broker, redis_server, certs, name):
    return start_worker(broker.endpoint, redis_server.url,
                        "--curve-server", certs / "server",
                        "--curve-cert", certs / (name + "_secret"), wait=False)


def cli_args(certs, name):
    args = ["--timeout-ms", "500", "--retries", "0"]
    if name:
        args += ["--curve-server", certs / "server", "--curve-cert", certs / (name + "_secret")]
    return args


def test_listed_client_and_worker_get_service(secure_broker, certs, redis_server,
                                              start_worker, run_cli):
    start_secure_worker(start_worker, secure_broker, redis_server, certs, "worker")
    assert wait_until(lambda: cart_workers(secure_broker.endpoint, certs) == 1, bound(5)), \
        "listed worker did not register over CURVE"
    result = run_cli(secure_broker.endpoint, *cli_args(certs, "client"), "get", "sam")
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert '"status":200' in result.stdout.replace(" ", "")


@pytest.mark.parametrize("name", ["stranger", None], ids=["unlisted-cert", "plain"])
def test_other_clients_get_no_service(secure_broker, certs, redis_server, start_worker,
                                      run_cli, name):
    start_secure_worker(start_worker, secure_broker, redis_server, certs, "worker")
    assert wait_until(lambda: cart_workers(secure_broker.endpoint, certs) == 1, bound(5))
    result = run_cli(secure_broker.endpoint, *cli_args(certs, name), "get", "sam")
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    if name:
        assert cart_workers(secure_broker.endpoint, certs, name) is None
    else:
        with MdpClient(secure_broker.endpoint, timeout=0.5) as plain:
            assert plain.request("mmi.service", b"cart") is None
    assert secure_broker.alive()


def test_unlisted_worker_cannot_register(secure_broker, certs, redis_server, start_worker):
    stranger = start_secure_worker(start_worker, secure_broker, redis_server, certs, "stranger")
    start_secure_worker(start_worker, secure_broker, redis_server, certs, "worker")
    assert wait_until(lambda: cart_workers(secure_broker.endpoint, certs) == 1, bound(5))
    counts = sample(lambda: cart_workers(secure_broker.endpoint, certs), 1.0)
    assert all(count == 1 for count in counts), counts
    assert stranger.alive(), "a refused worker should keep trying, not exit"
