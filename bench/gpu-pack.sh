#!/usr/bin/env bash
# gpu-pack.sh: packs what bench/gpu-check.sh needs on a GPU machine without Java or Maven into
# .device/ (git-ignored): a trimmed Java runtime (../shared/device/pack.sh), the engine jar, the
# compiled test classes and the JUnit console launcher. The jar is target/benchmarks.jar when it
# exists (built with -Pbench: the engine plus the JMH benchmarks), else target/ncsn-engine.jar;
# packing one keeps the bundle under the device machine's 64 MiB.
#   mvn -B -q -Pbench package -DskipTests && bench/gpu-pack.sh [extra files...]
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
build=${NCSN_BUILD_DIR:-target}
console_version=1.14.4
console=~/.m2/repository/org/junit/platform/junit-platform-console-standalone/$console_version/junit-platform-console-standalone-$console_version.jar
[[ -f $console ]] || mvn -B -q -ntp dependency:get -Dartifact=org.junit.platform:junit-platform-console-standalone:$console_version
tmp=$(mktemp -d)
cp "$console" "$tmp/junit-console.jar"
cp -r "$build/test-classes" "$tmp/test-classes"
jar="$build/ncsn-engine.jar"
[[ -f "$build/benchmarks.jar" ]] && jar="$build/benchmarks.jar"
cp "$jar" "$tmp/"
../shared/device/pack.sh "$tmp/$(basename "$jar")" "$tmp/junit-console.jar" "$tmp/test-classes" "$@"
rm -rf "$tmp"
