"""lifeiqa-bench: the benchmark harness around the lifeiqa model library.

Data flows one way: dataset records -> split plan -> jobs -> results store -> aggregation ->
leaderboard / check. Only the embedded demo exists so far.
"""
