#!/usr/bin/env bash
# Build the one-folder tam-desktop application with PyInstaller, then prove it works.
#
#   packaging/build.sh            # -> dist/tam-desktop/tam-desktop (+ share/ for desktop files)
#   packaging/build.sh --no-test  # skip the bundled executable's --self-test
#
# Needs the packaging extra in the active environment: pip install -e ".[packaging]".
# PYTHON selects the interpreter (default: .venv/bin/python if present, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

run_test=1
for arg in "$@"; do
    case "$arg" in
        --no-test) run_test=0 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg" >&2; exit 2 ;;
    esac
done

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "PyInstaller is missing: $PYTHON -m pip install -e '.[packaging]'" >&2
    exit 1
fi

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/tam-desktop.spec
app=dist/tam-desktop

# Desktop integration files, laid out as under a prefix (packagers copy share/ to /usr or ~/.local).
share="$app/share"
mkdir -p "$share/applications" "$share/metainfo"
cp packaging/io.github.tam_desktop.TamDesktop.desktop "$share/applications/"
cp packaging/io.github.tam_desktop.TamDesktop.metainfo.xml "$share/metainfo/"
icons=resources/icons
mkdir -p "$share/icons/hicolor/scalable/apps"
cp "$icons/tam-desktop.svg" "$share/icons/hicolor/scalable/apps/tam-desktop.svg"
for png in "$icons"/tam-desktop-*.png; do
    size=${png##*-}; size=${size%.png}
    mkdir -p "$share/icons/hicolor/${size}x${size}/apps"
    cp "$png" "$share/icons/hicolor/${size}x${size}/apps/tam-desktop.png"
done
end=$(date +%s)

echo "built $app in $((end - start)) s; size $(du -sh "$app" | cut -f1)"
if [[ $run_test -eq 1 ]]; then
    QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} "$app/tam-desktop" --self-test
fi
