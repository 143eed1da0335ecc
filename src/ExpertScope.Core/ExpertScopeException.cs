namespace ExpertScope.Core;

/// <summary>
/// Base of every error ExpertScope raises on purpose for bad input: the message is meant for the user
/// (the CLI prints it without a stack trace) and names the file and what is wrong.
/// </summary>
public class ExpertScopeException : Exception
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public ExpertScopeException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a user-facing message and the error that caused it.</summary>
    public ExpertScopeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
