"""A link's warning about a value that is not there outlives reruns nobody asked for."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def one_choice_script():
    import streamlit as st

    from dashboard.url_state import remember_choice, url_choice, url_choices

    url_choice("model", ["a", "b"], "a", param="model", noun="model")
    chosen = st.selectbox("Model", ["a", "b"], key="model")
    remember_choice(chosen, param="model", default="a")
    url_choices("extra", ["x", "y"], (), param="extra", noun="extras")
    extras = st.multiselect("Extra", ["x", "y"], key="extra")
    remember_choice(extras, param="extra", default=[])


def warnings_of(app: AppTest) -> list[str]:
    return [warning.value for warning in app.warning]


def test_the_warning_stays_through_a_rerun_until_another_value_is_chosen():
    # Probe s11: Live's camera component reruns the page once loaded, and the link's warnings vanished with it.
    app = AppTest.from_function(one_choice_script)
    app.query_params.update({"model": "gone", "extra": "y,lost"})
    app.run()
    assert len(warnings_of(app)) == 2
    app.run()  # a rerun with no change
    shown = warnings_of(app)
    assert len(shown) == 2 and any("gone" in text for text in shown) and any("lost" in text for text in shown)
    app.selectbox(key="model").set_value("b").run()  # the user chose: that warning has done its job
    shown = warnings_of(app)
    assert len(shown) == 1 and "lost" in shown[0]
    app.multiselect(key="extra").set_value(["x"]).run()
    assert not warnings_of(app)


def test_a_link_that_names_the_default_keeps_it_and_a_later_return_to_the_default_drops_it():
    # Walk s19: Home's example link says ?model=bundled (the default, named so another page's choice does not apply);
    # Predict tidied it away, the browser took that as a new history entry, and one Back looked like nothing happened.
    app = AppTest.from_function(one_choice_script)
    app.query_params.update({"model": "a"})
    app.run()
    assert app.query_params["model"] == "a"  # left as the link had it: no second entry in the browser's history
    app.selectbox(key="model").set_value("b").run()
    assert app.query_params["model"] == "b"
    app.selectbox(key="model").set_value("a").run()
    assert "model" not in app.query_params  # chosen here: the default stays out of the URL, as always
    fresh = AppTest.from_function(one_choice_script).run()
    assert "model" not in fresh.query_params and "extra" not in fresh.query_params
