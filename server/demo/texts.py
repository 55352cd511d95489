"""The words of the demo: shops, people, streets, and what a rep writes after a visit. The
team sells shop supplies (bags, till rolls, labels...) to independent shops. Each visit's
summary is written for its outcome, so the two always agree; a follow-up's task says what
its summary promised."""

from __future__ import annotations

from dataclasses import dataclass

TRADES = (
    "Boulangerie", "Pharmacie", "Garage", "Quincaillerie", "Librairie", "Fromagerie",
    "Cave", "Opticien", "Fleuriste", "Boucherie", "Imprimerie", "Épicerie fine",
    "Clinique vétérinaire", "Pressing", "Brasserie", "Salon de coiffure", "Chocolaterie",
    "Torréfaction", "Primeur", "Hôtel",
)  # fmt: skip
# Some shops are named after their place, not their owner.
PLACE_NAMES = (
    "du Centre", "de la Gare", "du Marché", "de la Place", "des Halles", "du Port",
    "du Parc", "de l'Église",
)  # fmt: skip
SURNAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
    "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David",
    "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier",
    "Blanc", "Guérin", "Boyer", "Chevalier", "Rousseau", "Faure", "Benali", "Nguyen",
    "Da Silva", "Perrin", "Bonnet", "Lambert", "Fontaine", "Chabert", "Brun", "Arnaud",
)  # fmt: skip
FIRST_NAMES = (
    "Claire", "Julien", "Sophie", "Nicolas", "Camille", "Antoine", "Léa", "Hugo",
    "Nathalie", "Karim", "Isabelle", "Thierry", "Amandine", "Mehdi", "Élodie", "Olivier",
    "Céline", "Stéphane", "Inès", "Mathieu",
)  # fmt: skip
ROLES = ("Owner", "Manager", "Buyer", "Head of purchasing", "Shop manager")
STREETS = (
    "rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "place du Marché",
    "boulevard Gambetta", "rue Pasteur", "rue de la Gare", "avenue de Verdun",
    "rue des Écoles", "chemin des Vignes", "rue du Commerce", "quai Saint-Antoine",
    "rue Nationale", "avenue Foch", "rue Émile Zola", "cours Lafayette", "rue Carnot",
    "place de l'Église", "rue du 8 Mai 1945", "avenue de la Libération",
)  # fmt: skip
PRODUCTS = (
    "kraft bags", "till rolls", "gift boxes", "price labels", "cleaning supplies",
    "window stickers", "loyalty cards", "takeaway boxes", "ribbon and wrapping paper",
)  # fmt: skip

# What a rep writes, by outcome. {contact} is who they met ("the owner" when the account
# has no contact yet), {first} their first name, {product} what it was about.
SUMMARIES: dict[str, tuple[str, ...]] = {
    "met": (
        "Met {contact}; happy with the last delivery, nothing to order this time.",
        "Quick visit with {contact}: stock of {product} is fine until next month.",
        "Showed {contact} the new {product}; liked them, will think it over.",
        "Checked the shelves with {contact}; our display is in good shape.",
    ),
    "no_answer": (
        "Shop closed when I came by; left the new catalogue in the letterbox.",
        "Closed for inventory today; will come back next week.",
        "Nobody at the counter who could order; {first} was out on a delivery.",
        "Closed over lunch and I could not wait; to try again another day.",
    ),
    "follow_up": (
        "{contact} wants our prices for {product}; to send by email.",
        "{contact} asked for samples of {product}.",
        "{contact} is interested in {product} for the second shop; call back next week.",
        "{contact} wants a quote for {product} before the end of the month.",
    ),
    "won": (
        "{contact} signed the order for {product}.",
        "Order taken with {contact}: {product}, delivery next week.",
    ),
    "lost": (
        "{contact} chose a competitor on price for {product}.",
        "{contact} is closing the shop at the end of the year; no more orders.",
    ),
}
# The task each follow-up summary calls for, in the same order; {shop} is the account.
FOLLOW_UPS: tuple[str, ...] = (
    "Email prices for {product} to {first}",
    "Bring samples of {product} to {shop}",
    "Call {first} back about {product}",
    "Send a quote for {product} to {shop}",
)
AFTER_WON = "Confirm the delivery date with {first}"

# Things a rep notes about an account; none of them depends on how a visit went.
NOTES = (
    "Deliveries before 8 am only, by the side door.",
    "Closed on Mondays.",
    "{first} prefers a call after 2 pm.",
    "Pays by transfer at 30 days; invoices go to their accountant.",
    "Parking is hard: use the car park behind the church.",
    "A second shop opens in the spring.",
    "Busy on market days (Wednesday and Saturday mornings): come in the afternoon.",
)

DEAL_TITLES = (
    "Annual {product} supply",
    "{Product} for the new season",
    "Christmas order: {product}",
    "Shop refit: {product}",
)


@dataclass(frozen=True)
class Words:
    """Who and what a visit is about, to fill the sentences in."""

    contact: str
    first: str
    product: str
    shop: str

    def fill(self, text: str) -> str:
        """`text` with its blanks filled, starting with a capital ("The owner wants...")."""
        out = text.format(
            contact=self.contact,
            first=self.first,
            product=self.product,
            Product=self.product[:1].upper() + self.product[1:],
            shop=self.shop,
        )
        return out[:1].upper() + out[1:]
