#!/usr/bin/env bash
# What `make test` needs besides Python and Postgres (which core/embedded_database.py provides):
# Redis at TEST_REDIS_URL, Chromium and a Chinese font for the browser test; Node.js comes from PyPI when missing
# (`make node`). Whatever is missing is started or, as root on Debian, installed with apt-get;
# what cannot be had stops the run before anything runs, with one line per missing piece.
#
#   bash tests/provision.sh PYTHON TEST_REDIS_URL
set -uo pipefail
mkdir -p var
python=${1:?usage: provision.sh PYTHON TEST_REDIS_URL}
redis_url=${2:?usage: provision.sh PYTHON TEST_REDIS_URL}
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
missing=()

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then apt-get update -qq || return 1; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

redis_answers() {
    "$python" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()' \
        "$redis_url" 2>/dev/null
}
read -r redis_host redis_port < <("$python" -c \
    'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 6379)' \
    "$redis_url")

if ! redis_answers; then
    if [[ "$redis_host" != 127.* && "$redis_host" != localhost ]]; then
        missing+=("Redis: nothing answers at $redis_url (start it there, or unset TEST_REDIS_URL for a local one)")
    else
        command -v redis-server >/dev/null || { can_apt && apt_install redis-server; }
        if command -v redis-server >/dev/null; then
            echo "Starting Redis on $redis_host:$redis_port"
            redis-server --daemonize yes --bind "$redis_host" --port "$redis_port" --save "" --appendonly no \
                --logfile "$PWD/var/redis-test.log" >/dev/null
            for _ in $(seq 1 50); do redis_answers && break; sleep 0.1; done
        fi
        redis_answers || missing+=("Redis: not installed and not installable here (as root: apt-get install redis-server)")
    fi
fi

if [ ! -x "$chromium" ]; then
    if [ -z "${CHROMIUM_PATH:-}" ] && can_apt; then
        echo "Installing Chromium for the browser test (apt-get install chromium)"
        apt_install chromium
    fi
    [ -x "$chromium" ] || missing+=("Chromium: none at $chromium (as root: apt-get install chromium; or set CHROMIUM_PATH)")
fi

# The pages are laid out in Chinese first and the browser test measures them (tap targets, no
# horizontal scroll): without a CJK font Chromium draws boxes of other widths and the sizes are wrong.
has_cjk_font() { command -v fc-list >/dev/null && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; }
if ! has_cjk_font; then
    if can_apt; then
        echo "Installing a Chinese font for the browser test (apt-get install fonts-noto-cjk)"
        apt_install fonts-noto-cjk
    fi
    has_cjk_font || missing+=("A Chinese font: none found by fc-list :lang=zh (as root: apt-get install fonts-noto-cjk)")
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "make test cannot run; missing:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi
