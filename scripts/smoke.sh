#!/usr/bin/env bash
# Smoke test with curl against a real listening demo server: both request forms, one bad
# upload, health endpoints. Prints "ok N - …" / "not ok N - …" lines; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."

port=${SMOKE_PORT:-3917}
base="http://127.0.0.1:${port}"
work=$(mktemp -d)
n=0
fails=0
check() { # check <description> <command...>
  n=$((n + 1))
  if "${@:2}" >/dev/null 2>&1; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}

PORT=$port LOG_LEVEL=warn node --import tsx scripts/demo.ts >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT

ready=0
for _ in $(seq 1 240); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 $server 2>/dev/null || break
  sleep 0.5
done
check "demo server becomes ready" test "$ready" = 1
if [ "$ready" != 1 ]; then tail -40 "$work/server.log"; exit 1; fi

# A test image made by the project's own code (no binary fixture in the repo).
node -e "require('sharp')({create:{width:96,height:64,channels:3,background:'#7a7a7a'}}).png().toFile('$work/part.png')"
head -c 2000 /dev/urandom >"$work/noise.bin"

code() { curl -s -o "$work/body.json" -w '%{http_code}' "$@"; }
has() { node -e "const b=JSON.parse(require('fs').readFileSync('$work/body.json','utf8')); if(!($1)) process.exit(1)"; }

check "GET /healthz is 200" test "$(code "$base/healthz")" = 200
check "GET /v1/models lists the model" test "$(code "$base/v1/models")" = 200
check "multipart detect is 200" test "$(code -F image=@"$work/part.png" -F category="metal plate" -F map=png "$base/v1/detect")" = 200
check "multipart response has score, regions, summary, png map of image size" has "typeof b.score==='number' && Array.isArray(b.regions) && typeof b.summary==='string' && b.map.width===96 && b.map.height===64 && b.model.generatedRandomModel===true"
check "raw-body detect is 200" test "$(code --data-binary @"$work/part.png" -H 'content-type: image/png' "$base/v1/detect?category=metal%20plate&map=grid")" = 200
check "raw-body response has a grid map" has "b.map.type==='grid' && b.map.values.length===b.map.width*b.map.height"
check "random bytes get a 4xx JSON error" test "$(code -F image=@"$work/noise.bin" -F category=bottle "$base/v1/detect")" = 415
check "the error is JSON with error and message" has "typeof b.error==='string' && typeof b.message==='string'"
check "server still answers after the bad upload" test "$(code "$base/healthz")" = 200

[ "$fails" -eq 0 ]
