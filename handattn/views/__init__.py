"""Views of what a layer does: terminal text (`terminal`), a figure (`figure`, matplotlib), HTML for
notebooks (`html`) and parameter sliders (`explore`, ipywidgets). Each turns data from `diagnose`,
`circuits` and `score` into something to look at; none computes anything of its own.
"""
