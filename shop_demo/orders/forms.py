from django import forms

from .models import COUNTRIES


class CheckoutForm(forms.Form):
    name = forms.CharField(max_length=150, label="Full name")
    email = forms.EmailField()
    street = forms.CharField(max_length=200, label="Street and number")
    postal_code = forms.CharField(max_length=20, label="Postal code")
    city = forms.CharField(max_length=100)
    country = forms.ChoiceField(choices=COUNTRIES, initial="DE")
    coupon = forms.CharField(
        max_length=40, required=False, label="Coupon code", help_text="Optional."
    )
    # One-time token against double submits; see orders.services.place_order.
    token = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        autocomplete = {
            "name": "name",
            "email": "email",
            "street": "street-address",
            "postal_code": "postal-code",
            "city": "address-level2",
            "country": "country",
        }
        for field, value in autocomplete.items():
            self.fields[field].widget.attrs["autocomplete"] = value
