"""What the routes (api/routes, api/pages) call: the logic behind each answer.

Routes stay thin (access, parameters, status codes); these modules validate, read and
write the database, and start or ask the sagas.
"""
