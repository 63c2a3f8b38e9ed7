"""Planning: protocols, recipes, baselines, split plans and jobs (records -> split plan -> jobs)."""
