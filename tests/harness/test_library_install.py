"""The installed libraries as a user sees them (docs/library.md): `cmake
--install`, pkg-config, and the C examples in examples/ built against the
install and run against a real broker, worker and Redis."""

import os
import shlex
import subprocess
from pathlib import Path

import pytest

import support
from support import BUILD_DIR, REPO_DIR, pack, unpack

EXAMPLE = REPO_DIR / "examples" / "call.c"
CART_EXAMPLE = REPO_DIR / "examples" / "cart_client.c"
#  A sanitized build installs sanitized archives: the example links the
#  runtime too.
SANITIZE_FLAGS = ["-fsanitize=address,undefined"] if support.SANITIZE else []


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(prefix, environment with PKG_CONFIG_PATH) of a fresh install."""
    prefix = tmp_path_factory.mktemp("prefix")
    result = subprocess.run(["cmake", "--install", str(BUILD_DIR), "--prefix", str(prefix)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    #  GNUInstallDirs picks lib, lib64 or lib/x86_64-linux-gnu.
    pc_dirs = sorted({path.parent for path in prefix.rglob("cartmq.pc")})
    assert len(pc_dirs) == 1, pc_dirs
    env = dict(os.environ, PKG_CONFIG_PATH=str(pc_dirs[0]))
    return prefix, env


def pkg_config(env, *args):
    result = subprocess.run(["pkg-config", *args], capture_output=True, text=True,
                            env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def build(env, source, output, *packages):
    flags = pkg_config(env, "--cflags", "--libs", *packages)
    result = subprocess.run(["cc", str(source), "-o", str(output), *SANITIZE_FLAGS, *flags],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return output


def test_pkg_config_names_only_what_the_libraries_need(installed):
    _, env = installed
    libs = pkg_config(env, "--libs", "cartmq")
    assert "-lcartmq" in libs and "-lczmq" in libs and "-lzmq" in libs, libs
    assert not any("hiredis" in flag or "msgpack" in flag for flag in libs), libs
    cart = pkg_config(env, "--libs", "cartmq-cart")
    assert cart.index("-lcartmq_cart") < cart.index("-lcartmq"), cart
    assert "-lmsgpackc" in cart and not any("hiredis" in flag for flag in cart), cart


def test_only_public_headers_are_installed(installed):
    prefix, _ = installed
    headers = {path.name for path in prefix.rglob("cartmq/*.h")}
    assert {"client.h", "worker.h", "common.h", "mdp.h", "curve.h", "log.h",
            "cart_codec.h", "cart_client.h"} <= headers, headers
    assert not headers & {"options.h", "zpl_check.h", "worker_fsm.h"}, headers
    assert not list(prefix.rglob("libcartmq_util*")), "the internal library was installed"


def test_cart_library_links_from_the_install(installed, tmp_path):
    _, env = installed
    source = tmp_path / "cart.c"
    source.write_text('#include <cartmq/cart_codec.h>\n'
                      '#include <cartmq/client.h>\n'
                      'int main (void) { return 0; }\n')
    program = build(env, source, tmp_path / "cart", "cartmq-cart")
    assert subprocess.run([str(program)], timeout=30).returncode == 0


def test_example_client_gets_a_200_from_the_cart_service(installed, cluster, tmp_path):
    _, env = installed
    program = build(env, EXAMPLE, tmp_path / "call", "cartmq")
    request = pack({"method": "GetCartItems", "user_id": "library-example"})
    result = subprocess.run([str(program), cluster.endpoint, "cart"], input=request,
                            capture_output=True, timeout=30 * support.SCALE)
    assert result.returncode == 0, result.stderr
    reply = unpack(result.stdout)
    assert reply["status"] == 200, reply
    assert reply["items"] == [], reply


def test_cart_example_adds_and_lists_through_the_typed_calls(installed, cluster, tmp_path):
    _, env = installed
    program = build(env, CART_EXAMPLE, tmp_path / "cart_client", "cartmq-cart")
    user = "cart-example-%d" % os.getpid()
    for expected in ("sku-1 x1", "sku-1 x2"):
        result = subprocess.run([str(program), cluster.endpoint, user],
                                capture_output=True, text=True, timeout=30 * support.SCALE)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [expected], result.stdout
