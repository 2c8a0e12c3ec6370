# Sums an order batch's lines (qty x price) per value of the field named $by, keeping the lines
# with at least $min units. A price that is not a number stops jq (exit 5): a function error.
(.items // []) as $items
| ($items | map(select((.qty // 0) >= $min))) as $kept
| {batch: .batch_id,
   lines: ($kept | length),
   skipped: (($items | length) - ($kept | length)),
   total: ($kept | map(.qty * .price) | add // 0 | . * 100 | round / 100),
   groups: ($kept
            | group_by(.[$by] // "none")
            | map({key: (.[0][$by] // "none" | tostring),
                   qty: (map(.qty) | add),
                   amount: (map(.qty * .price) | add | . * 100 | round / 100)}))}
