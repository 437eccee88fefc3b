"""What the patient register says when it says no."""

from carclinic.errors import Conflict


class LikelyDuplicate(Conflict):
    """The person being enrolled looks like one already registered (same name and date of birth, or the
    same MRN written another way). Enrolled only once the coordinator has looked and confirmed."""

    def __init__(self, patients: list):
        super().__init__(
            "This may be a patient who is already registered. Check the list; enrol only if this is someone else.",
            field_errors={"confirm_not_duplicate": ["Look at the likely duplicates above, then confirm or cancel."]},
        )
        self.patients = patients
