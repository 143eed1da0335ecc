namespace ExpertScope.Models.Synthetic;

/// <summary>
/// Text written for this project, used to learn the synthetic models' vocabulary and as the built-in default
/// input of the main job. It repeats a few ambiguous words in different senses, the shape of the probes.
/// </summary>
public static class BuiltInText
{
    /// <summary>Training text for the synthetic vocabulary.</summary>
    public const string Corpus =
        "The bank by the river was quiet in the morning. She sat on the bank and watched the water. " +
        "I deposited money at the bank before it closed. The bank raised its interest rate again. " +
        "A bat flew out of the cave at dusk. He swung the bat and hit the ball over the fence. " +
        "The spring rain filled the garden with flowers. The spring in the old clock was broken. " +
        "Experts route tokens, and routers choose experts for every token in every layer. " +
        "In 1998, the cat ate 3 fish; then it slept for 12 hours. The model reads text and predicts the next word. " +
        "Light travels faster than sound. The box was light enough to carry with one hand. " +
        "They will play a game in the park. The play opened at the theatre on Friday night. " +
        "A mixture of experts sends each token to a few of many small networks chosen by a router.";
}
