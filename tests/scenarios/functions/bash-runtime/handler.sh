# Order-line summariser (sourced by ./bootstrap): sums a batch's lines per group (category,
# warehouse or sku), leaving out lines under the minimum quantity, with jq (summary.jq).
#
# Vulnerable on purpose: the jq command line is assembled as a string and eval'd (so that the
# options can be added piecewise), and `group_by` goes into it unchecked: a request can end the
# jq command and run its own (command injection).

handler() {
  local event=$1 by min
  by=$(jq -r '.group_by // "category"' "$event")
  min=$(jq -r '.min_qty // 1' "$event")
  local cmd="jq -c --arg by $by --argjson min $min -f $LAMBDA_TASK_ROOT/summary.jq $event"
  echo "{\"msg\":\"summarise\",\"group_by\":\"${by:0:40}\"}" >&2
  eval "$cmd"
}
