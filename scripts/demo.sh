#!/usr/bin/env bash
# make demo: damage scikit-image's bundled sample photos, restore them with the shipped
# checkpoints, score the result against the originals and write a side-by-side HTML report.
set -euo pipefail
out=${1:-out/demo}
bin=.venv/bin
rm -rf "$out"
# </dev/null: no INPUT means the bundled photos, unless stdin is a pipe (as under `echo | make demo`)
data=$($bin/restore degrade --preset old-photo --seed 0 -o "$out/data" </dev/null)
$bin/restore restore "$data/degraded" -o "$out/restored" --save-masks "$out/masks" >/dev/null
$bin/restore evaluate "$out/restored" --reference "$data/clean" --inputs "$data/degraded" \
  --masks "$out/masks" --true-masks "$data/masks" --html "$out/report.html"
echo
echo "Demo results:"
echo "  damaged inputs:   $data/degraded"
echo "  restored photos:  $out/restored"
echo "  predicted masks:  $out/masks"
echo "  side-by-side:     $out/report.html  (open it in a browser)"
