#!/usr/bin/env bash
# Build Vigil's desktop package: dist/vigil/ (PyInstaller, one folder) and
# dist/vigil_<version>_amd64.deb, then run the smoke test on both.
#
#   bash packaging/build.sh            # build + smoke test (installs/removes the .deb as root)
#   VIGIL_SKIP_SMOKE=1 bash packaging/build.sh    # build only
#
# Runs inside the project's .venv (tools/bootstrap.sh makes it); needs dpkg-deb,
# zstd, strip (binutils) and, for the smoke test's install step, root.
# Writes dist/packaging-report.json with build time, sizes and start-up time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python

# PyInstaller is a build tool, not a runtime dependency: pinned here (and in
# pyproject's `package` extra) to the version this spec was measured with.
PYINSTALLER_PIN="pyinstaller==6.22.3"
HOOKS_PIN="pyinstaller-hooks-contrib==2026.9"

log() { printf 'build: %s\n' "$*" >&2; }
die() { printf 'build: ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$PY" ] || tools/bootstrap.sh
for tool in dpkg-deb dpkg-query ldd readelf strip zstd; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install dpkg binutils zstd)"
done

T0=$(date +%s)
if ! "$PY" - <<'EOF' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("pyinstaller") == "6.22.3" and m.version("pyinstaller-hooks-contrib") == "2026.9" else 1)
EOF
then
  log "installing $PYINSTALLER_PIN $HOOKS_PIN into .venv"
  "$PY" -m pip install -q "$PYINSTALLER_PIN" "$HOOKS_PIN"
fi

VERSION=$("$PY" - <<'EOF'
import re, tomllib, pathlib
project = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]["version"]
init = re.search(r'__version__\s*=\s*"([^"]+)"', pathlib.Path("app/__init__.py").read_text())
if init and init.group(1) != project:
    raise SystemExit(f"pyproject.toml says {project}, app/__init__.py says {init.group(1)}")
print(project)
EOF
) || die "version mismatch"
DEB=dist/vigil_${VERSION}_amd64.deb
log "Vigil $VERSION"

# -- 1. freeze ------------------------------------------------------------------
# One thread for torch during analysis (hooks import it); the machine is shared.
log "PyInstaller (one folder) -> dist/vigil/"
OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen MPLBACKEND=Agg \
  "$ROOT/.venv/bin/pyinstaller" --noconfirm --log-level WARN \
  --workpath build/pyinstaller --distpath dist packaging/vigil.spec
T_FREEZE=$(date +%s)
INTERNAL=dist/vigil/_internal
[ -x dist/vigil/vigil ] || die "dist/vigil/vigil was not built"
[ -x "$INTERNAL/torch/bin/torch_shm_manager" ] || die "torch_shm_manager missing (import torch needs it)"

# -- 2. strip what is safe to strip ----------------------------------------------
# Not everything: strip on auditwheel-repaired files (the vendored *.libs folders and
# the extension modules patchelf pointed at them, e.g. numpy's and Pillow's) breaks
# them (FIELD-NOTES).  Everything else - torch's libraries, libpython, the stdlib's
# extension modules, ICU, kiwisolver ... - is a plain build carrying symbols.
BEFORE_KB=$(du -sk dist/vigil | cut -f1)
STRIPPED=0
while IFS= read -r -d '' elf; do
  case $elf in *.libs/*) continue ;; esac
  # grep without -q reads all input: an early exit would SIGPIPE readelf, and pipefail
  # would then turn a match into a miss.
  readelf -d "$elf" 2>/dev/null | grep -E '\((RPATH|RUNPATH)\).*\.libs' >/dev/null && continue
  strip --strip-unneeded "$elf" 2>/dev/null && STRIPPED=$((STRIPPED + 1))
done < <(find "$INTERNAL" -type f \( -name '*.so' -o -name '*.so.*' \) -print0)
AFTER_KB=$(du -sk dist/vigil | cut -f1)
log "stripped $STRIPPED libraries: -$(( (BEFORE_KB - AFTER_KB) / 1024 )) MiB; dist/vigil is $(( AFTER_KB / 1024 )) MiB"

# -- 3. Debian dependencies from what the bundle links ---------------------------
# System libraries are not bundled (vigil.spec).  Every library a bundled ELF file
# names as NEEDED and that is not itself in the bundle is mapped to the Debian
# package that owns it; their own dependencies follow through apt.
log "deriving Depends (readelf NEEDED -> ldconfig -> dpkg -S)"
declare -A BUNDLED=() PKGS=()
while IFS= read -r -d '' f; do BUNDLED[$(basename "$f")]=1; done \
  < <(find dist/vigil \( -type f -o -type l \) -name '*.so*' -print0)
mapfile -t NEEDED < <(
  find dist/vigil -type f \( -name '*.so' -o -name '*.so.*' -o -path dist/vigil/vigil \) -print0 |
    xargs -0 readelf -d 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u
)
LDCACHE=$(/sbin/ldconfig -p 2>/dev/null || ldconfig -p)
for soname in "${NEEDED[@]}"; do
  [ -n "${BUNDLED[$soname]:-}" ] && continue
  lib=$(awk -v s="$soname" '$1 == s && /x86-64/ {print $NF; exit}' <<<"$LDCACHE")
  if [ -z "$lib" ]; then
    log "warning: $soname is not installed here: packaging/debian/depends.base must name its package"
    continue
  fi
  owner=""
  for candidate in "$lib" "$(readlink -f "$lib")" "${lib/#\/lib\//\/usr\/lib\/}" "${lib/#\/usr\/lib\//\/lib\/}"; do
    # awk, not head, for the same reason (SIGPIPE + pipefail aborted a build).
    owner=$(dpkg -S "$candidate" 2>/dev/null | awk -F: 'NR == 1 {print $1}') && [ -n "$owner" ] && break
  done
  [ -n "$owner" ] || die "no Debian package owns $lib (needed as $soname)"
  PKGS[$owner]=1
done
while read -r pkg; do
  [ -n "$pkg" ] && PKGS[$pkg]=1
done < <(grep -v '^#' packaging/debian/depends.base)
GLIBC=$(ldd --version | awk 'NR == 1 {print $NF}')
DEPENDS=""
for pkg in $(printf '%s\n' "${!PKGS[@]}" | sort); do
  dep=$pkg
  [ "$pkg" = libc6 ] && dep="libc6 (>= $GLIBC)"  # the bundle needs the build host's glibc
  DEPENDS+="${DEPENDS:+, }$dep"
done
log "Depends: $DEPENDS"

# -- 4. the .deb -------------------------------------------------------------------
STAGE=build/deb/vigil_${VERSION}_amd64
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
  "$STAGE/usr/share/icons/hicolor/scalable/apps" "$STAGE/usr/share/doc/vigil"
cp -al dist/vigil "$STAGE/opt/vigil" 2>/dev/null || cp -a dist/vigil "$STAGE/opt/vigil"
ln -s /opt/vigil/vigil "$STAGE/usr/bin/vigil"
install -m 0644 packaging/vigil.desktop "$STAGE/usr/share/applications/vigil.desktop"
install -m 0644 packaging/vigil.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/vigil.svg"
QT_QPA_PLATFORM=offscreen "$PY" packaging/render_icon.py "$STAGE/usr/share/icons/hicolor" >/dev/null
install -m 0644 packaging/debian/copyright "$STAGE/usr/share/doc/vigil/copyright"
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE_KB@/$INSTALLED_KB/" \
  -e "s/@DEPENDS@/$DEPENDS/" packaging/debian/control.in >"$STAGE/DEBIAN/control"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | xargs -0 md5sum >DEBIAN/md5sums)
chmod -R u+rwX,go+rX,go-w "$STAGE"
rm -f "$DEB"
T_DEB0=$(date +%s)
# zstd levels measured on this bundle (2 busy cores): 3: 7 s, 248 MiB; 6: 30 s, 234 MiB;
# 9: 82 s, 227 MiB; 12: 116 s, 226 MiB.  xz: ~4 min, ~175 MiB (FIELD-NOTES).
ZSTD_LEVEL=${VIGIL_DEB_ZSTD_LEVEL:-6}
dpkg-deb --root-owner-group -Zzstd -z"$ZSTD_LEVEL" --build "$STAGE" "$DEB" >/dev/null
T_DEB=$(date +%s)
log "$DEB: $(du -m "$DEB" | cut -f1) MiB, installs $(( INSTALLED_KB / 1024 )) MiB ($((T_DEB - T_DEB0)) s to compress)"

cat >dist/packaging-report.json <<EOF
{
  "version": "$VERSION",
  "build_s": $((T_DEB - T0)),
  "pyinstaller_s": $((T_FREEZE - T0)),
  "deb_compress_s": $((T_DEB - T_DEB0)),
  "dist_mb": $((AFTER_KB / 1024)),
  "stripped_mb": $(( (BEFORE_KB - AFTER_KB) / 1024 )),
  "installed_mb": $((INSTALLED_KB / 1024)),
  "deb_mb": $(du -m "$DEB" | cut -f1),
  "depends": "$DEPENDS"
}
EOF
log "build took $((T_DEB - T0)) s"

# -- 5. smoke test -------------------------------------------------------------------
if [ "${VIGIL_SKIP_SMOKE:-0}" = "1" ]; then
  log "smoke test skipped (VIGIL_SKIP_SMOKE=1)"
  exit 0
fi
SMOKE_ARGS=(--dist dist/vigil --version "$VERSION" --report dist/smoke-report.json)
if [ "$(id -u)" -eq 0 ]; then
  SMOKE_ARGS+=(--deb "$DEB")
else
  log "not root: the smoke test skips installing the .deb"
fi
"$PY" packaging/smoke_test.py "${SMOKE_ARGS[@]}"
