"""The calendar feed (SPEC section 10): a user's open tasks as an iCalendar document their
phone's calendar subscribes to, so reminders fire with no signal."""
