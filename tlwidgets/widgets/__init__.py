"""Notebook widgets: thin views over the core objects, with their state in traits.

Import each widget from its module (``from tlwidgets.widgets.doctor import DoctorWidget``)
so that a notebook loads only what it shows.
"""
