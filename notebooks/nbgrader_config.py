# nbgrader configuration for a class taught with these notebooks (see notebooks/README.md,
# "Grading a class with nbgrader"). Copy it into the course folder; run nbgrader with
# PYTHONPATH=$HAMLIB/notebooks (the course helpers and notebooks/grading are imported from there).
c = get_config()  # noqa: F821 (nbgrader's config loader defines it)
c.CourseDirectory.course_id = "hamburger"
c.Execute.timeout = 1200  # seconds per cell when autograding (nbgrader's default, 30, is too short for 05-07)

# Feedback without hidden tests and with alt text for figures: nbgrader's two default
# preprocessors with ours (notebooks/grading/feedback.py) between them.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "grading.feedback.HideHiddenTests",
    "grading.feedback.FigureAltText",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# On a shared JupyterHub with an exchange (instructor and students):
# c.Exchange.root = "/srv/nbgrader/exchange"
