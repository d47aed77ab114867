from django import forms


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Export file (.yaml)",
        help_text="A file that Export gave, from this install or another one.",
    )
