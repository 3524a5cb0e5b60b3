"""Pages a person reads: the EDA report, the evaluation report and the model card.

One base layout (templates/base.html) and one figure style (style.py) serve every page; each
page has a view module (eda, evaluation, model_card) that turns its input document into what
its template shows. What the pages say about the dataset (labels, classes, the label rule,
subgroups, what a row is) comes from its spec, through columns.DatasetView, and every count from
the data or the results document. Import the module you need: nothing here imports matplotlib or
Jinja2.
"""
